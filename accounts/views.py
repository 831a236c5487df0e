"""Pages of the accounts app: sign in, sign out, passwords, teams and social
accounts. Every password try goes through the door policy (doors.py)."""

from django.contrib import messages
from django.contrib.admin import site as admin_site
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from cxhub.errors import ApplicationError

from . import doors, passwords, selectors
from .forms import LoginForm, PasswordChangeForm, PasswordResetForm, SetPasswordForm
from .mfa import session as mfa_session


def _apply(form, error: ApplicationError) -> None:
    """A service's refusal on the form: beside each field it names, else at the top."""
    placed = False
    for name, problems in (error.extra.get("fields") or {}).items():
        if name in form.fields:
            form.add_error(name, problems)
            placed = True
    if not placed:
        form.add_error(None, error.message)


def _throttled(response, wait: int):
    response["Retry-After"] = str(wait)
    return response


class LoginView(auth_views.LoginView):
    """Django's login page, behind the door policy: the site's and the admin's only sign-in."""

    template_name = "accounts/login.html"
    form_class = LoginForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        wait = doors.sign_in_wait(request=request, username=username)
        if wait:
            # Bound without the password: cleaning the form must not check it.
            form = self.form_class(self.request, data={"username": username, "password": ""})
            form.errors.clear()
            form.add_error(None, doors.SignInThrottled(wait).message)
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            return _throttled(response, wait)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        data = self.request.POST
        # A form sent without a username or password guessed nothing: not counted.
        if data.get("username") and data.get("password"):
            doors.sign_in_failed(request=self.request, username=data["username"], method="password")
        return super().form_invalid(form)

    def form_valid(self, form):
        response = super().form_valid(form)
        if mfa_session.state(self.request) == mfa_session.VERIFY:
            # The password was right; the sign-in completes (and is recorded) at the second factor.
            return redirect(mfa_session.verify_url(self.get_success_url()))
        doors.sign_in_succeeded(request=self.request, user=form.get_user(), method="password")
        return response


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            doors.sign_out_recorded(request=request, user=request.user)
        return super().post(request, *args, **kwargs)


@never_cache
def admin_login(request):
    """/admin/login/: no second login. Everyone signs in on the site's page (one throttle, one
    audit trail) and comes back; a signed-in person who may not use the admin is told so."""
    target = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = ""
    target = target or reverse("admin:index")
    if not request.user.is_authenticated:
        return redirect_to_login(target)
    if admin_site.has_permission(request):
        return redirect(target)
    return render(request, "accounts/admin_refused.html", status=403)


@sensitive_post_parameters()
@login_required
def password_change(request):
    form = PasswordChangeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            user = passwords.password_change(
                request=request,
                user=request.user,
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password"],
            )
        except doors.SignInThrottled as error:
            form.add_error(None, error.message)
            return _throttled(
                render(request, "accounts/password_change.html", {"form": form}, status=429),
                error.wait,
            )
        except ApplicationError as error:
            _apply(form, error)
        else:
            # The new hash would sign this session out; keep it (others end).
            update_session_auth_hash(request, user)
            messages.success(request, "Your password was changed.")
            return redirect("dashboard")
    if form.errors:
        status = 400
    return render(request, "accounts/password_change.html", {"form": form}, status=status)


def password_reset(request):
    form = PasswordResetForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            passwords.password_reset_request(request=request, email=form.cleaned_data["email"])
        except passwords.PasswordResetThrottled as error:
            form.add_error(None, error.message)
            return _throttled(
                render(request, "accounts/password_reset.html", {"form": form}, status=429),
                error.wait,
            )
        except ApplicationError as error:
            _apply(form, error)
        else:
            return redirect("password-reset-sent")
    if form.errors:
        status = 400
    return render(request, "accounts/password_reset.html", {"form": form}, status=status)


def password_reset_sent(request):
    return render(request, "accounts/password_reset_sent.html")


_RESET_SESSION_TOKEN = "_password_reset_token"
_SET_PASSWORD = "set-password"


@sensitive_post_parameters()
@never_cache
def password_reset_confirm(request, uidb64: str, token: str):
    """The link from the e-mail. As Django's own view does, the token moves into the session and
    the page redirects to a URL without it, so it cannot leak through a Referer header."""
    if token != _SET_PASSWORD:
        if passwords.password_reset_user(uidb64=uidb64, token=token) is None:
            return render(request, "accounts/password_reset_confirm.html", {}, status=400)
        request.session[_RESET_SESSION_TOKEN] = token
        return redirect("password-reset-confirm", uidb64=uidb64, token=_SET_PASSWORD)
    token = request.session.get(_RESET_SESSION_TOKEN, "")
    user = passwords.password_reset_user(uidb64=uidb64, token=token)
    if user is None:
        return render(request, "accounts/password_reset_confirm.html", {}, status=400)
    form = SetPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            passwords.password_reset_complete(
                request=request,
                uidb64=uidb64,
                token=token,
                new_password=form.cleaned_data["new_password"],
            )
        except ApplicationError as error:
            _apply(form, error)
        else:
            del request.session[_RESET_SESSION_TOKEN]
            messages.success(request, "Your password was reset. Sign in with the new one.")
            return redirect("login")
    context = {"form": form, "valid_link": True, "person": user}
    return render(
        request,
        "accounts/password_reset_confirm.html",
        context,
        status=400 if form.errors else 200,
    )


@login_required
def team_list(request):
    teams = list(selectors.teams_for(user=request.user))
    return render(request, "accounts/teams.html", {"teams": teams})
