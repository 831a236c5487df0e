from django.urls import path

from . import reports, views

urlpatterns = [
    path("audit/events/", views.AuditEventListApi.as_view(), name="api-audit-events"),
    path("reports/turnaround/", reports.TurnaroundApi.as_view(), name="api-report-turnaround"),
    path("reports/on-time/", reports.OnTimeApi.as_view(), name="api-report-on-time"),
    path("reports/failures/", reports.FailuresApi.as_view(), name="api-report-failures"),
    path("reports/volume/", reports.VolumeApi.as_view(), name="api-report-volume"),
    path("reports/sla/", reports.SlaApi.as_view(), name="api-report-sla"),
]
