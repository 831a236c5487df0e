from django.urls import path

from . import views

urlpatterns = [
    path("approvals/", views.inbox, name="approval-inbox"),
    path("approvals/<int:request_id>/", views.review, name="approval-review"),
    path("posts/<int:post_id>/break-glass/", views.break_glass, name="post-break-glass"),
]
