from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.notification_views import notifications_page

from . import views

handler400 = "cxhub.views.bad_request"
handler404 = "cxhub.views.not_found"
handler500 = "cxhub.views.server_error"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/", include("publishing.api.urls")),
    path("api/v1/", include("approvals.api.urls")),
    path("api/v1/", include("audit.api.urls")),
    path("", include("audit.urls")),
    path("", include("publishing.urls")),
    path("", include("publishing.urls_dispatch")),
    path("", include("approvals.urls")),
    path("notifications/", notifications_page, name="notifications"),
    path("", include("accounts.urls")),
]
