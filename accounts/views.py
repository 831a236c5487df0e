"""Pages of the accounts app: sign in, sign out, the dashboard, teams and social accounts."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import redirect, render

from cxhub import health

from . import selectors, services
from .forms import LoginForm
from .mfa import session as mfa_session
from .models import Role


def _address(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class LoginView(auth_views.LoginView):
    """Django's login page, with failures counted and throttled across every web process."""

    template_name = "accounts/login.html"
    form_class = LoginForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        wait = services.login_throttle_wait(username=username, address=_address(request))
        if wait:
            form = self.get_form()
            form.errors.clear()
            minutes = max(1, round(wait / 60))
            form.add_error(
                None, f"Too many failed sign-ins. Try again in about {minutes} minute(s)."
            )
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        services.login_failed(
            username=self.request.POST.get("username", ""), address=_address(self.request)
        )
        return super().form_invalid(form)

    def form_valid(self, form):
        response = super().form_valid(form)
        if mfa_session.state(self.request) == mfa_session.VERIFY:
            # The password was right; the sign-in completes (and is recorded) at the second factor.
            return redirect(mfa_session.verify_url(self.get_success_url()))
        services.login_succeeded(user=form.get_user(), address=_address(self.request))
        return response


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            services.logout_recorded(user=request.user, address=_address(request))
        return super().post(request, *args, **kwargs)


@login_required
def dashboard(request):
    user = request.user
    memberships = list(selectors.memberships_of(user=user))
    drafting = (
        selectors.social_accounts_for(user=user, roles=[Role.DRAFTER])
        .order_by()
        .values("channel")
        .annotate(count=Count("id"))
        .order_by("channel")
    )
    return render(
        request,
        "accounts/dashboard.html",
        {
            "memberships": memberships,
            "drafting_by_channel": list(drafting),
            "worker": health.worker_status(),
        },
    )


@login_required
def team_list(request):
    teams = list(selectors.teams_for(user=request.user))
    return render(request, "accounts/teams.html", {"teams": teams})
