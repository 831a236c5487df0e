"""Project-level pages: the health and readiness checks, the API docs, and the API's answers for
what fails before a view (an address it does not have, a body Django refuses, a server error) in
the API's error shape."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_safe
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerView

from accounts.models import Role
from accounts.selectors import memberships_of
from networks.selectors import social_accounts_for

from . import health, liveness, shutdown


@never_cache
@require_GET
def healthz(request):
    checks = [health.check_database(), health.check_broker()]
    down = [check.name for check in checks if not check.ok]
    processes = health.launcher_processes()
    if processes is not None:
        down += health.processes_down(processes)
    body = {
        "status": "ok" if not down else "down: " + ", ".join(down),
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    if processes is not None:
        body["processes"] = processes
    if "database" not in down:
        body["worker"] = liveness.worker_status()
        # Reported, not failed: a load balancer must not take the web away because the sealer
        # is late; monitoring reads "degraded" and the check's detail.
        audit = health.check_audit()
        body["checks"][audit.name] = {"ok": audit.ok, "detail": audit.detail}
        if not audit.ok and not down:
            body["status"] = "degraded: audit"
    return JsonResponse(body, status=503 if down else 200)


@never_cache
@require_safe
def readyz(request):
    """For a load balancer: 200 while this process can serve, else 503 naming what is not there.
    Liveness and what the rest of the system is doing are /healthz's."""
    if shutdown.is_draining():
        # Told to stop: out of rotation, while the requests in flight finish.
        return JsonResponse(
            {
                "status": "not ready: shutting down",
                "failed": ["shutdown"],
                "checks": {"shutdown": {"ok": False, "detail": "stopping; draining requests"}},
            },
            status=503,
        )
    checks = health.readiness_checks()
    failed = [check.name for check in checks if not check.ok]
    body = {
        "status": "ready" if not failed else "not ready: " + ", ".join(failed),
        "failed": failed,
        "checks": {
            check.name: {"ok": check.ok, "detail": health.redacted(check.detail)}
            for check in checks
        },
    }
    return JsonResponse(body, status=503 if failed else 200)


class ApiDocsView(SpectacularSwaggerView):
    """Swagger UI under the site's Content-Security-Policy: its inline script carries the nonce
    (cxhub/swagger_ui.html). drf-spectacular relaxes Cross-Origin-Opener-Policy for Swagger's
    OAuth 2 login popup, which the docs do not offer (the API takes tokens), so the site's
    `same-origin` stays."""

    template_name = "cxhub/swagger_ui.html"

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        del response.headers["Cross-Origin-Opener-Policy"]  # SecurityMiddleware sets ours
        return response


def _api_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"message": message, "extra": {}}, status=status)


def _in_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    """Under /api/ a 404 keeps the API's error shape (an id that is not a number, or an address
    no operation has); elsewhere it is the usual page."""
    if _in_api(request):
        return _api_error("Not found.", 404)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    """A request Django refuses before any view: under /api/, a body whose fields pass
    DATA_UPLOAD_MAX_MEMORY_SIZE is a 413, anything else (too many fields, a malformed
    multipart body) a 400, both in the API's error shape."""
    if _in_api(request):
        if isinstance(exception, RequestDataTooBig):
            return _api_error("The request body is larger than the site's limit.", 413)
        return _api_error("Bad request.", 400)
    return defaults.bad_request(request, exception)


def server_error(request):
    if _in_api(request):
        return _api_error("Server error.", 500)
    return defaults.server_error(request)


@login_required
def dashboard(request):
    """The home page: the person's teams and the accounts they draft for, by network (it reads
    people and networks, so it sits above both, with the wiring)."""
    user = request.user
    memberships = list(memberships_of(user=user))
    drafting = (
        social_accounts_for(user=user, roles=[Role.DRAFTER])
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
            "worker": liveness.worker_status(),
        },
    )
