"""Project-level pages: the health check."""

from django.http import JsonResponse
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
