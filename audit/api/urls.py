from django.urls import path

from . import views

urlpatterns = [
    path("audit/events/", views.AuditEventListApi.as_view(), name="api-audit-events"),
]
