"""Project-level pages: the health check and the API docs."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerView

from . import health


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
        body["worker"] = health.worker_status()
    return JsonResponse(body, status=503 if down else 200)


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
