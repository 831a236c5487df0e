"""Project-level pages: the health check, and the API's answer for an address it does not have."""

from django.http import JsonResponse
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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


def not_found(request, exception=None):
    """Under /api/ a 404 keeps the API's error shape (an id that is not a number, or an address
    no operation has); elsewhere it is the usual page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"message": "Not found.", "extra": {}}, status=404)
    return defaults.page_not_found(request, exception)
