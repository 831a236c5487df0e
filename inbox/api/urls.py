from django.urls import path

from . import views

urlpatterns = [
    path("inbox/", views.InboxListApi.as_view(), name="api-inbox"),
    path("inbox/<int:item_id>/", views.InboxItemApi.as_view(), name="api-inbox-item"),
    path(
        "inbox/<int:item_id>/assign/",
        views.InboxItemAssignApi.as_view(),
        name="api-inbox-item-assign",
    ),
    path(
        "inbox/<int:item_id>/status/",
        views.InboxItemStatusApi.as_view(),
        name="api-inbox-item-status",
    ),
    path(
        "inbox/<int:item_id>/reply/", views.InboxItemReplyApi.as_view(), name="api-inbox-item-reply"
    ),
    path(
        "inbox/<int:item_id>/close/", views.InboxItemCloseApi.as_view(), name="api-inbox-item-close"
    ),
    path("responses/", views.ResponseListApi.as_view(), name="api-responses"),
    path("responses/<int:response_id>/", views.ResponseDetailApi.as_view(), name="api-response"),
]
