"""Settings of bench/api.py's server: cxhub's own, with bench/bare_api.py as the URLconf (the
API's URLs and the bare list view beside them, served by the same processes). Never shipped:
nothing of cxhub names these modules."""

from cxhub.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare_api"
# API requests touch no static files: no collectstatic before the run (as tests/settings.py).
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
