"""The baseline of bench/api.py: the least DRF list view of the posts table, beside cxhub's own
URLs in one URLconf (bench/bare_settings.py), so that one server answers both.

It shares with /api/v1/posts/ what any DRF list would (the REST_FRAMEWORK defaults: token
authentication, IsAuthenticated, the same pagination class and page size, the JSON renderer)
and leaves out what cxhub adds: the scope of the person asking, the filters, targets and
media, the fuller serializer."""

from django.urls import path
from rest_framework import serializers
from rest_framework.generics import ListAPIView

from cxhub.urls import handler400, handler404, handler500  # noqa: F401 (the URLconf's own)
from cxhub.urls import urlpatterns as cxhub_urlpatterns
from publishing.models import Post

PATH = "/bench/bare/posts/"


class BarePostOutput(serializers.ModelSerializer):
    class Meta:
        model = Post
        fields = ["id", "team", "author", "status", "body", "scheduled_at", "created_at"]


class BarePostListApi(ListAPIView):
    queryset = Post.objects.all()
    serializer_class = BarePostOutput


urlpatterns = [path(PATH.lstrip("/"), BarePostListApi.as_view()), *cxhub_urlpatterns]
