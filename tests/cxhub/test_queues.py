"""Every task of the project goes to a named queue that a worker reads (settings: CELERY_TASK_*
and CXHUB_QUEUES): a new task without a route fails here rather than land where no worker
started with -Q looks."""

from django.conf import settings

from cxhub.celery import app

PROJECT_APPS = (
    "cxhub",
    "accounts",
    "networks",
    "audit",
    "publishing",
    "approvals",
    "inbox",
    "listening",
    "desk",
    "sso",
)


def _project_tasks() -> list[str]:
    app.loader.import_default_modules()  # the apps' tasks modules, as a worker imports them
    return sorted(name for name in app.tasks if name.split(".")[0] in PROJECT_APPS)


def test_every_task_of_the_project_is_routed_to_a_named_queue():
    tasks = _project_tasks()
    assert "publishing.tasks.publish_targets" in tasks  # the discovery found the apps' tasks
    unrouted = [name for name in tasks if name not in settings.CELERY_TASK_ROUTES]
    assert unrouted == [], "route these tasks in CELERY_TASK_ROUTES (cxhub/settings.py)"
    routed_to = {name: app.amqp.router.route({}, name)["queue"].name for name in tasks}
    assert set(routed_to.values()) <= set(settings.CXHUB_QUEUES) - {"default"}


def test_every_route_names_a_task_and_a_declared_queue():
    tasks = _project_tasks()
    for name, route in settings.CELERY_TASK_ROUTES.items():
        assert name in tasks, f"CELERY_TASK_ROUTES names no task {name!r}"
        assert route["queue"] in settings.CXHUB_QUEUES


def test_a_worker_without_queues_named_consumes_every_queue():
    # `make run` and the integration tests start their workers without -Q
    consumed = {queue.name for queue in app.amqp.queues.consume_from.values()}
    assert consumed == set(settings.CXHUB_QUEUES)
    assert settings.CELERY_TASK_DEFAULT_QUEUE in consumed
