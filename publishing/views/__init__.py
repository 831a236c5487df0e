"""Pages of the publishing app: compose and edit, the post page, the posts list, the calendar,
and the media files behind them.

Views parse the form, call a service, and render. A service's ApplicationError comes back on the
page, its message beside the field it names, with its status (400 bad input, 403 not allowed,
409 wrong state). Posts outside the user's scope are 404.
"""

from .calendar import calendar_view
from .compose import post_edit, post_new
from .media import media_file
from .posts import (
    post_cancel,
    post_detail,
    post_duplicate,
    post_list,
    post_submit,
    post_target_decide,
)

__all__ = [
    "calendar_view",
    "media_file",
    "post_cancel",
    "post_detail",
    "post_duplicate",
    "post_edit",
    "post_list",
    "post_new",
    "post_submit",
    "post_target_decide",
]
