from django.urls import path

from . import reports, views

urlpatterns = [
    path("audit/events/", views.AuditEventListApi.as_view(), name="api-audit-events"),
    path(
        "audit/events/<int:seq>/proof/",
        views.AuditEventProofApi.as_view(),
        name="api-audit-event-proof",
    ),
    path("audit/consistency/", views.AuditConsistencyApi.as_view(), name="api-audit-consistency"),
    path("audit/checkpoint/", views.AuditCheckpointApi.as_view(), name="api-audit-checkpoint"),
    path("reports/turnaround/", reports.TurnaroundApi.as_view(), name="api-report-turnaround"),
    path("reports/on-time/", reports.OnTimeApi.as_view(), name="api-report-on-time"),
    path("reports/failures/", reports.FailuresApi.as_view(), name="api-report-failures"),
    path("reports/volume/", reports.VolumeApi.as_view(), name="api-report-volume"),
    path("reports/sla/", reports.SlaApi.as_view(), name="api-report-sla"),
    path("reports/engagement/", reports.EngagementApi.as_view(), name="api-report-engagement"),
]
