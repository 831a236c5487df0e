"""Routes of the social accounts API."""

from django.urls import path

from . import views

urlpatterns = [
    path("social-accounts/", views.SocialAccountListApi.as_view(), name="api-social-accounts"),
    path(
        "social-accounts/<int:account_id>/",
        views.SocialAccountDetailApi.as_view(),
        name="api-social-account",
    ),
]
