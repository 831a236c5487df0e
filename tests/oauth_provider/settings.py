"""Settings of the provider process (never of cxhub's tests): SQLite in the directory the
process is given, django-oauth-toolkit with rotating refresh tokens and PKCE required."""

import os
import tempfile

DIRECTORY = os.environ.get("OAUTH_PROVIDER_DIR") or tempfile.mkdtemp(prefix="oauth-provider-")

SECRET_KEY = "oauth-provider-for-tests-only-" + "k" * 40
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "oauth2_provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.oauth_provider.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(DIRECTORY, "provider.sqlite3"),
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
LOGIN_URL = "/login/"
# Fast hashing: client secrets are hashed when stored, as passwords are.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

OAUTH2_PROVIDER = {
    # Mastodon's two broad scopes, as cxhub asks for them.
    "SCOPES": {"read": "Read the account", "write": "Post for the account"},
    "DEFAULT_SCOPES": ["read"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    # A refresh token is spent when used: the old one is refused afterwards (RFC 6749 §6).
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "PKCE_REQUIRED": True,
    # cxhub's callback in the tests is plain http (Django's test client, a live server).
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
}
