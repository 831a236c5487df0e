from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from accounts.notification_views import notifications_page
from accounts.views import LogoutView, admin_login

from . import monitoring, views

handler400 = "cxhub.views.bad_request"
handler404 = "cxhub.views.not_found"
handler500 = "cxhub.views.server_error"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", monitoring.metrics_view, name="metrics"),
    path("", views.dashboard, name="dashboard"),
    # Before the admin's own: no second sign-in page (accounts.views.admin_login), and signing
    # out of the admin or changing one's password there is the site's audited one.
    path("admin/login/", admin_login),
    path("admin/logout/", LogoutView.as_view()),
    path("admin/password_change/", RedirectView.as_view(pattern_name="password-change")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", views.ApiDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/", include("networks.api.urls")),
    path("api/v1/", include("publishing.api.urls")),
    path("api/v1/", include("approvals.api.urls")),
    path("api/v1/", include("inbox.api.urls")),
    path("api/v1/", include("listening.api.urls")),
    path("api/v1/", include("desk.api.urls")),
    path("", include("desk.urls")),
    path("", include("publishing.urls")),
    path("", include("publishing.urls_dispatch")),
    path("", include("approvals.urls")),
    path("", include("inbox.urls")),
    path("", include("listening.urls")),
    path("notifications/", notifications_page, name="notifications"),
    path("", include("sso.urls")),
    path("", include("accounts.urls")),
    path("", include("networks.urls")),
]
