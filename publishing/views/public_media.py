"""One stored image behind a signed, short-lived link (publishing.public_media), for a network
that fetches it (Instagram). No sign-in: the signature is the permission."""

from django.http import FileResponse, Http404
from django.views.decorators.http import require_safe

from ..public_media import image_for_token


@require_safe
def public_media_file(request, token: str, extension: str):
    """The image a valid link names; 404 for an expired, altered or unknown one."""
    image = image_for_token(token)
    if image is None or image.extension != extension:
        raise Http404
    response = FileResponse(image.file.open("rb"), content_type=image.mime)
    # The link dies within the hour: no cache should keep the image longer than that.
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Robots-Tag"] = "noindex"
    return response
