from django.urls import path

from . import views
from .views.public_media import public_media_file

urlpatterns = [
    path(
        "media-files/<int:media_id>/<str:kind>",
        views.media_file,
        name="media-file",
    ),
    path("posts/", views.post_list, name="post-list"),
    path("posts/new/", views.post_new, name="post-new"),
    path("posts/<int:post_id>/", views.post_detail, name="post-detail"),
    path("posts/<int:post_id>/edit/", views.post_edit, name="post-edit"),
    path("posts/<int:post_id>/submit/", views.post_submit, name="post-submit"),
    path("posts/<int:post_id>/cancel/", views.post_cancel, name="post-cancel"),
    path("posts/<int:post_id>/duplicate/", views.post_duplicate, name="post-duplicate"),
    path(
        "posts/<int:post_id>/targets/<int:target_id>/decide/",
        views.post_target_decide,
        name="post-target-decide",
    ),
    path("calendar/", views.calendar_view, name="calendar"),
    path("public-media/<str:token>.<str:extension>", public_media_file, name="public-media"),
]
