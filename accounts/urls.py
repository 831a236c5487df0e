from django.urls import path

from . import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("", views.dashboard, name="dashboard"),
    path("teams/", views.team_list, name="teams"),
    path("accounts/", views.social_account_list, name="social-accounts"),
]
