"""Settings for the test suite: cxhub.settings with test defaults for what the environment
does not say. DATABASE_URL and CELERY_BROKER_URL pass through, so CI runs the same suite on
PostgreSQL + Redis and on the embedded defaults."""

import os

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "x" * 60)
# Two keys, so every test runs with rotation in place (newest first).
os.environ.setdefault(
    "CXHUB_TOKEN_KEYS",
    "dGVzdC1rZXktbmV3ZXN0LTAwMDAwMDAwMDAwMDAwMDA=,dGVzdC1rZXktb2xkZXItMDAwMDAwMDAwMDAwMDAwMDA=",
)
os.environ.setdefault("CXHUB_HTTPS", "0")
# The suite signs people in with force_login and tokens; the second-factor tests turn the
# requirement on themselves (tests/accounts/test_mfa.py, tests/e2e/test_passkeys.py).
os.environ.setdefault("CXHUB_MFA_REQUIRED_ROLES", "")
# The audit checkpoints' signing key (a test key: never use it elsewhere) and its verifier key.
os.environ.setdefault(
    "CXHUB_AUDIT_SIGNING_KEY",
    "PRIVATE+KEY+cxhub.test/audit+0ae2332e+ASQsBZ1l7L04zWTJedaz24vaZFeBFgdGNMz3is8XlI9i",
)
# Every sealer run that grew the tree signs (tests/audit/test_sealer.py tests the interval).
os.environ.setdefault("CXHUB_AUDIT_CHECKPOINT_SECONDS", "0")
TEST_AUDIT_VERIFIER_KEY = "cxhub.test/audit+0ae2332e+AWT5b/YEsmE1/pwcNGpnU2l1WlVw2O6XRzYyQSfG287l"
os.environ.setdefault("CXHUB_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))

# A test's data lives in its own transaction, which the lanes' threads (each with its own
# connection) cannot see: tests of concurrent sends turn them on with a transactional database
# (tests/publishing/test_dispatch_lanes.py), as do the real workers of the integration tests.
os.environ.setdefault("CXHUB_PUBLISH_THREADS", "1")

# The suite migrates its own test database as the connecting user and runs the app as its own
# restricted role (tests/dbroles.py): an operator's split must not redirect it.
os.environ.pop("CXHUB_MIGRATE_DATABASE_URL", None)
os.environ.pop("CXHUB_DB_APP_ROLE", None)

from cxhub.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The pages find static files in the apps' folders: no collectstatic before a test run (the
# production storage is tested through a real server in tests/cxhub/test_web_server.py).
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
WHITENOISE_USE_FINDERS = True

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # A file (threads share it, unlike :memory:), one per test process so runs never collide.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
