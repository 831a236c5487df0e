from django.urls import path

from . import views

urlpatterns = [
    path("audit/", views.audit_log, name="audit-log"),
    path("reports/", views.reports, name="reports"),
    path("posts/<int:post_id>/timeline/", views.post_timeline, name="post-timeline"),
]
