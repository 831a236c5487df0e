from django.urls import include, path

from . import views

urlpatterns = [
    path("login/", views.sign_in),
    path("test/people/", views.person_put),
    path("test/client/redirect-uris/", views.client_redirect_add),
    path("test/people/<str:username>/remove/", views.person_remove),
    path("openid/", include("oidc_provider.urls", namespace="oidc_provider")),
]
