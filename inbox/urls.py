from django.urls import path

from . import responses_views, views

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/updates/", views.inbox_updates, name="inbox-updates"),
    path("inbox/rows/", views.inbox_rows, name="inbox-rows"),
    path("inbox/bulk/", views.inbox_bulk, name="inbox-bulk"),
    path("inbox/responses/", responses_views.responses_page, name="inbox-responses"),
    path("inbox/responses/new/", responses_views.response_new, name="inbox-response-new"),
    path(
        "inbox/responses/<int:response_id>/active/",
        responses_views.response_active,
        name="inbox-response-active",
    ),
    path("inbox/<int:item_id>/", views.item_detail, name="inbox-item"),
    path("inbox/<int:item_id>/assign/", views.item_assign, name="inbox-item-assign"),
    path("inbox/<int:item_id>/status/", views.item_status, name="inbox-item-status"),
    path("inbox/<int:item_id>/tags/", views.item_tag_add, name="inbox-item-tag"),
    path("inbox/<int:item_id>/tags/remove/", views.item_tag_remove, name="inbox-item-untag"),
    path("inbox/<int:item_id>/notes/", views.item_note_add, name="inbox-item-note"),
    path("inbox/<int:item_id>/reply/", views.item_reply, name="inbox-item-reply"),
]
