from django.urls import path

from . import views

urlpatterns = [
    path("audit/", views.audit_log, name="audit-log"),
    path("audit/events/<int:seq>/verify/", views.event_verify, name="audit-event-verify"),
    path(
        "audit/events/<int:seq>/proof.json",
        views.event_proof_download,
        name="audit-event-proof",
    ),
    path("audit/verifier.py", views.verifier_download, name="audit-verifier"),
    path("reports/", views.reports, name="reports"),
    path("posts/<int:post_id>/timeline/", views.post_timeline, name="post-timeline"),
]
