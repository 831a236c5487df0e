from django.urls import path

from . import views

urlpatterns = [
    path("approval-policies/", views.PolicyListCreateApi.as_view(), name="api-policies"),
    path("approval-policies/<int:policy_id>/", views.PolicyDetailApi.as_view(), name="api-policy"),
    path("approvals/inbox/", views.InboxApi.as_view(), name="api-approvals-inbox"),
    path("approvals/<int:request_id>/", views.RequestDetailApi.as_view(), name="api-approval"),
    path(
        "approvals/<int:request_id>/decide/",
        views.DecideApi.as_view(),
        name="api-approval-decide",
    ),
    path(
        "posts/<int:post_id>/break-glass/",
        views.BreakGlassApi.as_view(),
        name="api-post-break-glass",
    ),
]
