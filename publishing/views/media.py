"""The media files behind the pages: served only to people who may see them."""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404

from .. import selectors


@login_required
def media_file(request, media_id: int, kind: str):
    """An uploaded image, to the people who may use it (media are not public files)."""
    media = selectors.media_visible(user=request.user).filter(pk=media_id).first()
    if media is None:
        raise Http404
    stored = media.thumbnail if kind == "thumbnail" else media.file
    if not stored:
        raise Http404
    response = FileResponse(stored.open("rb"), content_type=media.mime)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# Shared helpers --------------------------------------------------------------------------------
