"""Django settings for cxhub. Everything that differs between machines comes from the environment.

With nothing set, the project runs on one machine: SQLite under var/ and a filesystem broker that
needs no server. With DATABASE_URL and CELERY_BROKER_URL set, the same code runs on PostgreSQL and
Redis or RabbitMQ, as many web processes and workers as needed.
"""

import re
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from csp.constants import NONCE, NONE, SELF
from kombu import Exchange, Queue

from .env import (
    ImproperlyConfiguredEnv,
    env_bool,
    env_float,
    env_int,
    env_json_object,
    env_list,
    env_networks,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CXHUB_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)

_DEV_SECRET_KEY = "dev-only-insecure-key-for-debug-runs-never-in-production-0123456789"
SECRET_KEY = env_secret("SECRET_KEY", debug_default=_DEV_SECRET_KEY, debug=DEBUG)
if not DEBUG and (len(SECRET_KEY) < 50 or SECRET_KEY.startswith(("django-insecure", "dev-only"))):
    raise ImproperlyConfiguredEnv(
        "SECRET_KEY is too weak for DEBUG off: give at least 50 random characters"
    )

# OAuth tokens are encrypted with MultiFernet: the first key encrypts, every key decrypts, so a
# new key goes first and `manage.py rotate_token_keys` re-encrypts under it.
_DEV_TOKEN_KEY = "ZGV2LW9ubHktdG9rZW4ta2V5LW5ldmVyLXVzZS1pdCE="
TOKEN_KEYS = [
    key
    for key in env_secret("CXHUB_TOKEN_KEYS", debug_default=_DEV_TOKEN_KEY, debug=DEBUG).split(",")
    if key.strip()
]
for _index, _key in enumerate(TOKEN_KEYS):
    try:
        Fernet(_key.strip())
    except (ValueError, TypeError):
        raise ImproperlyConfiguredEnv(
            f"CXHUB_TOKEN_KEYS: key number {_index + 1} is not a valid Fernet key "
            "(32 url-safe base64-encoded bytes; make one with `python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
        ) from None
if not DEBUG and _DEV_TOKEN_KEY in TOKEN_KEYS:
    raise ImproperlyConfiguredEnv("CXHUB_TOKEN_KEYS holds the development key; give a real one")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
if DEBUG:
    ALLOWED_HOSTS.append("*")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "guardian",
    "treebeard",
    "django_otp",
    "django_otp_webauthn",
    "cxhub",
    "accounts",
    "networks",
    "audit",
    "publishing",
    "approvals",
    "inbox",
    "listening",
    "desk",
    "djangosaml2",
    "sso",
]

MIDDLEWARE = [
    # Outermost: every answer, redirects and refusals too, is logged with its request id and
    # counted (cxhub/logs.py, cxhub/metrics.py).
    "cxhub.logs.RequestLogMiddleware",
    "cxhub.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "cxhub.headers.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # /healthz and /readyz, before anything checks the Host header (cxhub/probes.py).
    "cxhub.probes.ProbeMiddleware",
    # Before anything reads a body: refuses an oversize one with 413 before it is read.
    "cxhub.uploads.RequestSizeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The SAML exchange's own session (its cookie is SameSite=None: the IdP posts back cross-site).
    "djangosaml2.middleware.SamlSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed a second factor.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A person signed in through OpenID Connect is checked with the provider again past
    # CXHUB_SSO_RECHECK_SECONDS; one the provider no longer knows is signed out and deactivated.
    "sso.middleware.SsoRecheckMiddleware",
    # A session that needs a second factor and has not passed one goes to verify or enrol.
    "accounts.mfa.middleware.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cxhub.urls"
WSGI_APPLICATION = "cxhub.wsgi.application"
ASGI_APPLICATION = "cxhub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cxhub.context_processors.navigation",
                "sso.context_processors.sign_in_options",
            ],
        },
    },
]

# Database ------------------------------------------------------------------------------------
_default_db_url = f"sqlite:///{VAR_DIR / 'cxhub.sqlite3'}"
try:
    _db = dj_database_url.parse(
        env_str("DATABASE_URL", "") or _default_db_url,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
except Exception as exc:  # dj-database-url raises several types for a malformed URL
    raise ImproperlyConfiguredEnv(f"DATABASE_URL is malformed: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions serialise writers up front, so the web, the worker and beat can share
    # one SQLite file without "database is locked" upgrades; WAL lets readers run meanwhile.
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
    }
    _db["CONN_MAX_AGE"] = 0
    _db["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    # A server that does not answer fails a request (and /readyz) in seconds, not minutes of TCP
    # retries; `?connect_timeout=` in DATABASE_URL wins.
    _db.setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("CXHUB_DB_CONNECT_TIMEOUT_SECONDS", 5, minimum=1)
    )
DATABASES = {"default": _db}

# The split of database roles (README, "Database roles"; cxhub/dbroles.py): DATABASE_URL is the
# application's restricted role, CXHUB_MIGRATE_DATABASE_URL the tables' owner, which `migrate`
# and `db_roles` use; CXHUB_DB_APP_ROLE names the application's role, so `migrate` refuses it.
CXHUB_DB_APP_ROLE = env_str("CXHUB_DB_APP_ROLE", "")
if CXHUB_DB_APP_ROLE and not re.match(r"^[a-z_][a-z0-9_]{0,62}$", CXHUB_DB_APP_ROLE):
    raise ImproperlyConfiguredEnv(
        f"CXHUB_DB_APP_ROLE={CXHUB_DB_APP_ROLE!r} is not a plain role name "
        "(lower-case letters, digits, underscores)"
    )
CXHUB_MIGRATE_DATABASE = None
if _migrate_url := env_str("CXHUB_MIGRATE_DATABASE_URL", ""):
    try:
        CXHUB_MIGRATE_DATABASE = dj_database_url.parse(_migrate_url)
    except Exception as exc:
        raise ImproperlyConfiguredEnv(f"CXHUB_MIGRATE_DATABASE_URL is malformed: {exc}") from None
    if "postgresql" not in _db["ENGINE"] or "postgresql" not in CXHUB_MIGRATE_DATABASE["ENGINE"]:
        raise ImproperlyConfiguredEnv(
            "CXHUB_MIGRATE_DATABASE_URL is for PostgreSQL: both it and DATABASE_URL must be "
            "postgres:// URLs"
        )
    if CXHUB_MIGRATE_DATABASE["NAME"] != _db["NAME"]:
        raise ImproperlyConfiguredEnv(
            f"CXHUB_MIGRATE_DATABASE_URL names database {CXHUB_MIGRATE_DATABASE['NAME']!r} but "
            f"DATABASE_URL names {_db['NAME']!r}: they must be the same database, reached as its "
            "owner and as the application's role"
        )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# People ---------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
    # Single sign-on (sso/): each answers only when its provider is configured below.
    "sso.oidc.OidcBackend",
    "sso.saml.SamlBackend",
]
# No anonymous user row: every page needs a login and every API call a token or session.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
GUARDIAN_RENDER_403 = False

# A list of breached passwords (SHA-1, one a line, sorted; HIBP's "ordered by hash" file works)
# replaces the one shipped in accounts/data/; no network call is ever made.
CXHUB_BREACHED_PASSWORDS_FILE = env_str(
    "CXHUB_BREACHED_PASSWORDS_FILE", str(BASE_DIR / "accounts" / "data" / "breached-sha1.txt.gz")
)
if not Path(CXHUB_BREACHED_PASSWORDS_FILE).is_file():
    raise ImproperlyConfiguredEnv(
        f"CXHUB_BREACHED_PASSWORDS_FILE={CXHUB_BREACHED_PASSWORDS_FILE!r} is not a file"
    )
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.validators.BreachedPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# The door policy (accounts/doors.py): password tries are counted per person AND client address.
# This many failures of one pair within the window lock that pair (only) for the window …
LOGIN_FAILURE_LIMIT = env_int("CXHUB_LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("CXHUB_LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)
# … after this many it must wait between tries, SLOWDOWN_SECONDS doubling with each failure …
LOGIN_SLOWDOWN_AFTER = env_int("CXHUB_LOGIN_SLOWDOWN_AFTER", 3, minimum=1)
LOGIN_SLOWDOWN_SECONDS = env_int("CXHUB_LOGIN_SLOWDOWN_SECONDS", 5, minimum=1)
# … and one address failing this often within the window, whatever the usernames (password
# spraying), may not try any password until the window has passed.
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("CXHUB_LOGIN_ADDRESS_FAILURE_LIMIT", 20, minimum=1)
# Reverse proxies whose X-Forwarded-For is believed (CIDRs); anyone else's is ignored.
TRUSTED_PROXIES = env_networks("CXHUB_TRUSTED_PROXIES")

# Password reset: links work once and for this long; requests are limited per client address and
# per e-mail address within the window (the answer never says whether an account exists).
PASSWORD_RESET_TIMEOUT = env_int("CXHUB_PASSWORD_RESET_SECONDS", 3600, minimum=60)
PASSWORD_RESET_WINDOW_SECONDS = env_int("CXHUB_PASSWORD_RESET_WINDOW_SECONDS", 3600, minimum=1)
PASSWORD_RESET_ADDRESS_LIMIT = env_int("CXHUB_PASSWORD_RESET_ADDRESS_LIMIT", 10, minimum=1)
PASSWORD_RESET_EMAIL_LIMIT = env_int("CXHUB_PASSWORD_RESET_EMAIL_LIMIT", 3, minimum=1)

# API tokens (accounts.ApiToken): stored as hashes, shown once; each expires. A token asked for
# without a lifetime lives CXHUB_API_TOKEN_DAYS; none may be asked for longer than the maximum.
CXHUB_API_TOKEN_DAYS = env_int("CXHUB_API_TOKEN_DAYS", 90, minimum=1)
CXHUB_API_TOKEN_MAX_DAYS = env_int("CXHUB_API_TOKEN_MAX_DAYS", 365, minimum=1)
if CXHUB_API_TOKEN_DAYS > CXHUB_API_TOKEN_MAX_DAYS:
    raise ImproperlyConfiguredEnv(
        f"CXHUB_API_TOKEN_DAYS={CXHUB_API_TOKEN_DAYS} exceeds "
        f"CXHUB_API_TOKEN_MAX_DAYS={CXHUB_API_TOKEN_MAX_DAYS}"
    )

# Single sign-on (sso/) ------------------------------------------------------------------------
# Off unless configured. OpenID Connect: the issuer (its endpoints are discovered from
# <issuer>/.well-known/openid-configuration unless given below), cxhub's client id and secret
# (CXHUB_OIDC_CLIENT_SECRET_FILE works too). The login page shows "Sign in with <NAME>".
CXHUB_OIDC_ISSUER = env_str("CXHUB_OIDC_ISSUER", "").rstrip("/")
CXHUB_OIDC_CLIENT_ID = env_str("CXHUB_OIDC_CLIENT_ID", "")
CXHUB_OIDC_CLIENT_SECRET = env_str("CXHUB_OIDC_CLIENT_SECRET", "")
CXHUB_OIDC_NAME = env_str("CXHUB_OIDC_NAME", "single sign-on")
# "offline_access" (or the provider's equivalent) may be needed for a refresh token, which the
# re-check below uses; "groups" where the provider gives group claims only under that scope.
CXHUB_OIDC_SCOPES = env_str("CXHUB_OIDC_SCOPES", "openid email profile")
CXHUB_OIDC_SIGN_ALGO = env_str("CXHUB_OIDC_SIGN_ALGO", "RS256")
# The claim a new person's username is made from (then email, then the subject).
CXHUB_OIDC_USERNAME_CLAIM = env_str("CXHUB_OIDC_USERNAME_CLAIM", "preferred_username")
# Endpoints given by hand (then no discovery for those).
CXHUB_OIDC_ENDPOINTS = {
    key: env_str(f"CXHUB_OIDC_{key.upper()}", "")
    for key in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
    )
}
if CXHUB_OIDC_ISSUER and not (CXHUB_OIDC_CLIENT_ID and CXHUB_OIDC_CLIENT_SECRET):
    raise ImproperlyConfiguredEnv(
        "CXHUB_OIDC_ISSUER is set: CXHUB_OIDC_CLIENT_ID and CXHUB_OIDC_CLIENT_SECRET (or "
        "CXHUB_OIDC_CLIENT_SECRET_FILE) must be set too"
    )
# SAML 2.0: the identity provider's metadata from an address or a file, cxhub's own key and
# certificate (PEM files: signing requests, decrypting assertions), its entity id (default:
# <public address>/sso/saml/metadata/).
CXHUB_SAML_IDP_METADATA_URL = env_str("CXHUB_SAML_IDP_METADATA_URL", "")
CXHUB_SAML_IDP_METADATA_FILE = env_str("CXHUB_SAML_IDP_METADATA_FILE", "")
CXHUB_SAML_SP_ENTITY_ID = env_str("CXHUB_SAML_SP_ENTITY_ID", "")
CXHUB_SAML_SP_KEY_FILE = env_str("CXHUB_SAML_SP_KEY_FILE", "")
CXHUB_SAML_SP_CERT_FILE = env_str("CXHUB_SAML_SP_CERT_FILE", "")
CXHUB_SAML_NAME = env_str("CXHUB_SAML_NAME", "SAML single sign-on")
# The attribute a new person's username is made from (default: the NameID).
CXHUB_SAML_USERNAME_ATTRIBUTE = env_str("CXHUB_SAML_USERNAME_ATTRIBUTE", "")
# SAML has no back channel to learn that a person was removed: a SAML session lasts at most this
# long (0: as long as any session), then the identity provider is asked again.
CXHUB_SAML_SESSION_SECONDS = env_int("CXHUB_SAML_SESSION_SECONDS", 0, minimum=0)
CXHUB_SAML_XMLSEC_BINARY = env_str("CXHUB_SAML_XMLSEC_BINARY", "/usr/bin/xmlsec1")
if CXHUB_SAML_IDP_METADATA_URL or CXHUB_SAML_IDP_METADATA_FILE:
    for _name in ("CXHUB_SAML_SP_KEY_FILE", "CXHUB_SAML_SP_CERT_FILE"):
        if not globals()[_name] or not Path(globals()[_name]).is_file():
            raise ImproperlyConfiguredEnv(
                f"SAML is configured: {_name} must name a readable PEM file"
            )
    if CXHUB_SAML_IDP_METADATA_FILE and not Path(CXHUB_SAML_IDP_METADATA_FILE).is_file():
        raise ImproperlyConfiguredEnv(
            f"CXHUB_SAML_IDP_METADATA_FILE={CXHUB_SAML_IDP_METADATA_FILE!r} is not a file"
        )
# A person signed in through OpenID Connect is checked with the provider (refresh token, then
# userinfo) when their session's last check is older than this: one the provider refuses is
# signed out and deactivated. SAML has no such back channel (see sso/saml.py).
CXHUB_SSO_RECHECK_SECONDS = env_int("CXHUB_SSO_RECHECK_SECONDS", 300, minimum=0)
# Link a first SSO sign-in to an existing cxhub user with the same (verified) e-mail address.
# Off by default: only where the identity provider alone decides people's addresses.
CXHUB_SSO_LINK_BY_EMAIL = env_bool("CXHUB_SSO_LINK_BY_EMAIL", False)
# Timeout of each call to an identity provider.
CXHUB_SSO_TIMEOUT_SECONDS = env_float("CXHUB_SSO_TIMEOUT_SECONDS", 10.0, minimum=0.1)
# djangosaml2: the SP configuration is built from the settings above (sso/saml.py).
SAML_CONFIG_LOADER = "sso.saml.sp_config"
SAML_SESSION_COOKIE_NAME = "cxhub_saml"
SAML_CREATE_UNKNOWN_USER = True
SAML_ATTRIBUTE_MAPPING = {}
SAML_DEFAULT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
SAML_IGNORE_LOGOUT_ERRORS = True
ACS_DEFAULT_REDIRECT_URL = "/"

# Second factor (accounts/mfa/) ---------------------------------------------------------------
# People holding one of these roles on any team must pass a second factor (TOTP, a passkey or a
# recovery code) on every way in: pages, the admin and token issuance. Staff and superusers
# count as admins. Anyone who enrolled a device passes it at every sign-in, required or not.
_KNOWN_ROLES = ("drafter", "approver", "lead", "admin")  # accounts.models.Role, kept in step
CXHUB_MFA_REQUIRED_ROLES = env_list("CXHUB_MFA_REQUIRED_ROLES", ["lead", "admin"])
for _role in CXHUB_MFA_REQUIRED_ROLES:
    if _role not in _KNOWN_ROLES:
        raise ImproperlyConfiguredEnv(
            f"CXHUB_MFA_REQUIRED_ROLES: unknown role {_role!r} (one of {', '.join(_KNOWN_ROLES)})"
        )
CXHUB_MFA_REQUIRED_FOR_ALL = env_bool("CXHUB_MFA_REQUIRED_FOR_ALL", False)
# Removing a device needs a verification at most this old.
CXHUB_MFA_FRESH_SECONDS = env_int("CXHUB_MFA_FRESH_SECONDS", 300, minimum=30)
# The WebAuthn relying party: passkeys are bound to this domain. Empty: the host of
# CXHUB_PUBLIC_URL when set, else of each request. Changing it orphans every passkey.
CXHUB_WEBAUTHN_RP_ID = env_str("CXHUB_WEBAUTHN_RP_ID", "")
OTP_WEBAUTHN_RP_ID_CALLABLE = "accounts.mfa.webauthn.rp_id"
# The origins a passkey ceremony may come from (https://cxhub.example.org). Empty: the origin of
# CXHUB_PUBLIC_URL when set, else the one each request came to (accounts.mfa.webauthn.Helper);
# the library's check that wants a fixed list is then silenced.
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list("CXHUB_WEBAUTHN_ORIGINS", [])
SILENCED_SYSTEM_CHECKS = [] if OTP_WEBAUTHN_ALLOWED_ORIGINS else ["otp_webauthn.E030"]
OTP_TOTP_ISSUER = "cxhub"
OTP_WEBAUTHN_RP_NAME = "cxhub"
OTP_WEBAUTHN_HELPER_CLASS = "accounts.mfa.webauthn.Helper"
# Passkeys are a second factor here, after the password, never a way in on their own: the
# password step is where the door policy (throttles, audit) stands.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False

# Internationalisation ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files ---------------------------------------------------------------------------------
STATIC_URL = "static/"
# Where `collectstatic` puts the files the web serves (README, "Running in production").
STATIC_ROOT = Path(env_str("CXHUB_STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("CXHUB_MEDIA_ROOT", str(VAR_DIR / "media")))
# Media store: the uploaded images of posts, which every web process and worker reads and
# writes (README, "Running as separate services"). A local directory by default (several hosts
# mount one share there), or any S3-compatible bucket through django-storages when
# CXHUB_MEDIA_S3_BUCKET is set. Files are private either way: pages serve them through views
# that check who asks (the bucket needs no public access).
CXHUB_MEDIA_S3_BUCKET = env_str("CXHUB_MEDIA_S3_BUCKET", "")
_media_storage: dict = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if CXHUB_MEDIA_S3_BUCKET:
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": CXHUB_MEDIA_S3_BUCKET,
            # Empty: AWS itself; else the address of another S3-compatible store (MinIO, Ceph…).
            "endpoint_url": env_str("CXHUB_MEDIA_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("CXHUB_MEDIA_S3_REGION", "") or None,
            # Empty: boto3's own chain (AWS_* variables, an instance or pod role).
            "access_key": env_str("CXHUB_MEDIA_S3_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("CXHUB_MEDIA_S3_SECRET_ACCESS_KEY", "") or None,
            # A folder in the bucket, so one bucket can hold several installations.
            "location": env_str("CXHUB_MEDIA_S3_PREFIX", "").strip("/"),
            # "path" for stores without per-bucket host names (most MinIO set-ups).
            "addressing_style": env_str("CXHUB_MEDIA_S3_ADDRESSING_STYLE", "") or None,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
    if _media_storage["OPTIONS"]["addressing_style"] not in (None, "path", "virtual", "auto"):
        raise ImproperlyConfiguredEnv(
            "CXHUB_MEDIA_S3_ADDRESSING_STYLE must be path, virtual or auto"
        )
STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        # With DEBUG off, pages name each file by its content's hash, which WhiteNoise serves
        # compressed (gzip, brotli) and cacheable for ever; `collectstatic` writes them and the
        # manifest, and /readyz is 503 until it has.
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# From the apps' folders as they are (DEBUG); otherwise only what collectstatic wrote.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Security -------------------------------------------------------------------------------------
# Behind HTTPS (the default with DEBUG off) cookies are secure and plain HTTP is redirected.
HTTPS = env_bool("CXHUB_HTTPS", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("CXHUB_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Content-Security-Policy (django-csp): scripts only from our own static files, or inline with
# the response's nonce ({{ request.csp_nonce }}, the Swagger UI page alone); no inline style
# attributes or <style> blocks either; nothing framed, no plugins. No form-action: signing in
# through a network's or an identity provider's page is a form post redirected to it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
    },
}
# Permissions-Policy (cxhub/headers.py): off for every page and anything it embeds; passkeys
# (WebAuthn) allowed on our own origin only.
CXHUB_PERMISSIONS_POLICY = {
    "camera": [],
    "microphone": [],
    "geolocation": [],
    "payment": [],
    "usb": [],
    "publickey-credentials-get": ["self"],
    "publickey-credentials-create": ["self"],
}
SESSION_COOKIE_AGE = env_int("CXHUB_SESSION_SECONDS", 8 * 3600, minimum=60)

# API ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "cxhub.schema.AutoSchema",
    "EXCEPTION_HANDLER": "cxhub.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "cxhub.api.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"auth": env_str("CXHUB_AUTH_THROTTLE", "10/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "cxhub API",
    "DESCRIPTION": "Drafting, approval, publishing and audit of an organisation's social accounts.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ApprovalRuleEnum": "approvals.models.Rule",
        "RoleEnum": "accounts.models.Role",
        "ChannelEnum": "networks.models.Channel",
        "ItemStatusEnum": "inbox.models.ItemStatus",
        # The inbox's item kinds kept their first name when listening's kinds came.
        "KindEnum": "inbox.models.ItemKind",
        "AlertKindEnum": "listening.models.AlertKind",
        "AlertStatusEnum": "listening.models.AlertStatus",
        "SourceKindEnum": "listening.models.Source.Kind",
    },
}

# Cache: Redis when given (shared by every process), else per-process memory.
_cache_url = env_str("CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Celery ---------------------------------------------------------------------------------------
# The default broker is cxhub's own transport on folders under var/broker (cxhub/broker.py): no
# server to install. It answers to kombu's `filesystem://` but is not kombu's transport, which
# can hand a worker a half-written message and loses the message a killed worker held.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or "filesystem://"
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "cxhub.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder": str(BROKER_DIR)}
else:
    # Redis re-delivers an unacknowledged task after the visibility timeout: it must exceed the
    # longest task and any countdown we use.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CXHUB_BROKER_VISIBILITY_TIMEOUT", 3600, minimum=60)
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CXHUB_TASK_SOFT_TIME_LIMIT", 120, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CXHUB_TASK_TIME_LIMIT", 180, minimum=2)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Separate services (README, "Running as separate services") ----------------------------------
# Queues named by the work they carry, so each can have its own workers (`celery worker -Q …`):
# - publishing: the dispatcher, the sends to the networks and the sweeper; the latency of a
#   scheduled post, and the one queue that may carry a burst (a batch of 200 sends);
# - notifications: e-mail to people (notifications, password resets), which must not wait
#   behind a burst of sends, and whose SMTP server may be slow without slowing a send;
# - maintenance: the system's own upkeep on a timer: the audit sealer (its checkpoint window
#   raises an alarm if a backlog of sends delays it), token renewal, escalation of overdue
#   approvals, the SSO re-check and the heartbeat (which thus proves this queue is served);
# - reading: what the networks say back, read on a timer: the inbox's replies, mentions and
#   comments, and our posts' engagement figures (calls that may be many and slow, and that give
#   way to publishing's sends);
# - default: anything unrouted (a task added without a route; tests/cxhub/test_queues.py
#   fails until it has one).
# A worker started without -Q consumes every queue below (what `make run` does).
CXHUB_QUEUES = ("publishing", "notifications", "maintenance", "reading", "default")
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue(name, Exchange(name), routing_key=name) for name in CXHUB_QUEUES]
CELERY_TASK_ROUTES = {
    "publishing.tasks.dispatch_due": {"queue": "publishing"},
    "publishing.tasks.publish_target": {"queue": "publishing"},
    "publishing.tasks.publish_targets": {"queue": "publishing"},
    "publishing.tasks.sweep_stuck": {"queue": "publishing"},
    "accounts.tasks.send_notification_emails": {"queue": "notifications"},
    "accounts.tasks.send_password_reset": {"queue": "notifications"},
    "audit.tasks.seal": {"queue": "maintenance"},
    "networks.tasks.refresh_expiring_tokens": {"queue": "maintenance"},
    "approvals.tasks.escalate_overdue": {"queue": "maintenance"},
    "sso.tasks.recheck_token_holders": {"queue": "maintenance"},
    "cxhub.tasks.heartbeat": {"queue": "maintenance"},
    "inbox.tasks.ingest_due": {"queue": "reading"},
    "inbox.tasks.ingest_account": {"queue": "reading"},
    "inbox.tasks.sandbox_trickle": {"queue": "reading"},
    "inbox.tasks.recheck_due": {"queue": "reading"},
    "inbox.tasks.recheck_account": {"queue": "reading"},
    "listening.tasks.collect_due": {"queue": "reading"},
    "listening.tasks.collect_source": {"queue": "reading"},
    "listening.tasks.sandbox_stream": {"queue": "reading"},
    "listening.tasks.purge_due": {"queue": "reading"},
    "listening.tasks.deliver_alert": {"queue": "reading"},
    "listening.tasks.deliver_due": {"queue": "reading"},
    "publishing.tasks.engagement_due": {"queue": "reading"},
    "publishing.tasks.read_engagement": {"queue": "reading"},
}
# Beat on several hosts: only the holder of a leader lock sends (cxhub/beat.py). A standby
# tries to take it, and the leader checks it still holds it, this often.
CELERY_BEAT_SCHEDULER = "cxhub.beat:LeaderScheduler"
CXHUB_BEAT_LOCK_SECONDS = env_float("CXHUB_BEAT_LOCK_SECONDS", 5.0, minimum=0.1)
# Intervals of the periodic tasks declared in cxhub/celery.py.
CXHUB_HEARTBEAT_SECONDS = env_int("CXHUB_HEARTBEAT_SECONDS", 10, minimum=1)
CXHUB_ESCALATION_SECONDS = env_int("CXHUB_ESCALATION_SECONDS", 300, minimum=5)

# Dispatch (publishing/dispatch/) -----------------------------------------------------------
# At-least-once delivery, done safely. A task is acknowledged after it ran (acks_late), so a
# broker may hand it out twice; publish_target claims its row first, and a second copy finds it
# no longer queued and does nothing. reject_on_worker_lost stays off (a task that kills its
# worker would loop); work lost with a worker, or with a broker that restarted empty, is found
# by the sweeper: `sending` past CXHUB_SENDING_STUCK_SECONDS goes back to be reconciled, `queued`
# past CXHUB_QUEUED_STUCK_SECONDS goes back to waiting. Retries are rows due again
# (next_attempt_at), never ETA/countdown tasks, so nothing waits in the broker for long: the only
# countdown is a database-error retry of a few seconds, far below the visibility timeout.
# Redis must run with `maxmemory-policy noeviction`: an evicted message is a lost publish (the
# sweeper would find it, late). The visibility timeout (above) must exceed the longest task, so
# Redis never re-delivers a task that is still running: checked below against the hard limit.
# The audit sealer (audit/sealer.py) folds committed events into the Merkle tree and signs a
# checkpoint this often; an event must be in a signed checkpoint within the window, or /healthz
# says so. The signing key (CXHUB_AUDIT_SIGNING_KEY or _FILE, never the database) is read by
# audit.checkpoint.load_signing_key; verifiers also trust CXHUB_AUDIT_VERIFIER_KEYS (old keys
# after a rotation, comma-separated vkeys).
CXHUB_AUDIT_SEAL_SECONDS = env_int("CXHUB_AUDIT_SEAL_SECONDS", 10, minimum=1)
# A checkpoint is signed when the tree grew and the last is at least this old (so a busy log
# gets a few a minute, not one a run); the window must leave room for a sealer run on top.
CXHUB_AUDIT_CHECKPOINT_SECONDS = env_int("CXHUB_AUDIT_CHECKPOINT_SECONDS", 30, minimum=0)
CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS = env_int(
    "CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS",
    60,
    minimum=CXHUB_AUDIT_SEAL_SECONDS + CXHUB_AUDIT_CHECKPOINT_SECONDS,
)
CXHUB_AUDIT_VERIFIER_KEYS = env_list("CXHUB_AUDIT_VERIFIER_KEYS", [])
# Witnesses (audit/witnesses.py): each checkpoint also goes where the database's writers cannot
# change it. A directory (meant for a separate mount or object store) keeps one file per
# checkpoint; a webhook gets each one POSTed, signed with HMAC-SHA256 under the shared secret
# (header X-Cxhub-Signature: t=<unix time>,v1=<hex of HMAC(secret, "<t>." + body)>); the
# auditors' e-mail gets the latest one at most once per CXHUB_AUDIT_WITNESS_EMAIL_SECONDS.
# Failed sends stay queued and are retried on the next sealer run.
CXHUB_AUDIT_WITNESS_DIR = env_str("CXHUB_AUDIT_WITNESS_DIR", "")
CXHUB_AUDIT_WITNESS_WEBHOOK_URL = env_str("CXHUB_AUDIT_WITNESS_WEBHOOK_URL", "")
CXHUB_AUDIT_WITNESS_WEBHOOK_SECRET = env_str("CXHUB_AUDIT_WITNESS_WEBHOOK_SECRET", "")
if CXHUB_AUDIT_WITNESS_WEBHOOK_URL:
    if not CXHUB_AUDIT_WITNESS_WEBHOOK_URL.startswith(("https://", "http://")):
        raise ImproperlyConfiguredEnv("CXHUB_AUDIT_WITNESS_WEBHOOK_URL must be an http(s) URL")
    if not CXHUB_AUDIT_WITNESS_WEBHOOK_SECRET:
        raise ImproperlyConfiguredEnv(
            "CXHUB_AUDIT_WITNESS_WEBHOOK_SECRET (or _FILE) must be set with the webhook URL"
        )
CXHUB_AUDIT_WITNESS_WEBHOOK_TIMEOUT_SECONDS = env_float(
    "CXHUB_AUDIT_WITNESS_WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.1
)
CXHUB_AUDIT_WITNESS_EMAILS = env_list("CXHUB_AUDIT_WITNESS_EMAILS", [])
for _address in CXHUB_AUDIT_WITNESS_EMAILS:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", _address):
        raise ImproperlyConfiguredEnv(f"CXHUB_AUDIT_WITNESS_EMAILS: {_address!r} is not an address")
CXHUB_AUDIT_WITNESS_EMAIL_SECONDS = env_int("CXHUB_AUDIT_WITNESS_EMAIL_SECONDS", 86400, minimum=60)
CXHUB_DISPATCH_SECONDS = env_int("CXHUB_DISPATCH_SECONDS", 5, minimum=1)
# Targets due within this many seconds are claimed by the current run and start at their
# time (a countdown of at most this): on time, rather than up to one interval late.
CXHUB_DISPATCH_LOOKAHEAD_SECONDS = env_int(
    "CXHUB_DISPATCH_LOOKAHEAD_SECONDS", CXHUB_DISPATCH_SECONDS, minimum=0
)
CXHUB_SWEEP_SECONDS = env_int("CXHUB_SWEEP_SECONDS", 10, minimum=1)
# Each worker writes its own heartbeat this often (cxhub/liveness.py); one silent for longer
# than CXHUB_WORKER_LOST_SECONDS is taken for dead, and the sweeper takes back what it had
# claimed: its sends go to be reconciled, queued targets are claimed again. Recovery thus
# takes about lost + sweep interval, whatever the broker's visibility timeout.
CXHUB_WORKER_BEAT_SECONDS = env_int("CXHUB_WORKER_BEAT_SECONDS", 3, minimum=1)
CXHUB_WORKER_LOST_SECONDS = env_int("CXHUB_WORKER_LOST_SECONDS", 15, minimum=2)
# Targets claimed per transaction, and transactions per dispatcher run.
CXHUB_DISPATCH_BATCH_SIZE = env_int("CXHUB_DISPATCH_BATCH_SIZE", 200, minimum=1)
CXHUB_DISPATCH_MAX_BATCHES = env_int("CXHUB_DISPATCH_MAX_BATCHES", 25, minimum=1)
# Claimed targets go to the workers in groups, one task each (a group's claim and outcomes are
# one transaction each, whatever its size): at most this many targets a group …
CXHUB_PUBLISH_GROUP_SIZE = env_int("CXHUB_PUBLISH_GROUP_SIZE", 25, minimum=1)
# … and small enough that a batch spreads over at least this many tasks (worker processes).
CXHUB_PUBLISH_SPREAD = env_int("CXHUB_PUBLISH_SPREAD", 8, minimum=1)
# A worker process makes a group's sends at the same time (publishing/dispatch/lanes.py): at most
# this many at once per process; across every worker on every host, at most this many at once to
# one network host (an instance, or a network's API) and for one account (slots.py). With
# `make run`'s two worker processes, 128 sends at once, 24 to a host: 240 posts a second at most
# to networks that answer in 400 ms on four hosts (bench/dispatch.py measured 189).
CXHUB_PUBLISH_THREADS = env_int("CXHUB_PUBLISH_THREADS", 64, minimum=1)
CXHUB_PUBLISH_PER_HOST = env_int("CXHUB_PUBLISH_PER_HOST", 24, minimum=1)
CXHUB_PUBLISH_PER_ACCOUNT = env_int("CXHUB_PUBLISH_PER_ACCOUNT", 1, minimum=1)
# Groups a worker process has under way at once (lanes.py: the task hands its group's sends to a
# thread and takes the next): a prefork process runs one task at a time, and a group waits for
# its slowest send. 1: each group in its task, start to end (the default on SQLite, one writer).
CXHUB_PUBLISH_GROUPS_AT_ONCE = env_int(
    "CXHUB_PUBLISH_GROUPS_AT_ONCE", 4 if "postgresql" in _db["ENGINE"] else 1, minimum=1
)
# Calls left (X-RateLimit-Remaining and the like) at or below which an account waits for its
# network's reset before its next send (networks/ratelimits.py).
CXHUB_RATE_LIMIT_RESERVE = env_int("CXHUB_RATE_LIMIT_RESERVE", 0, minimum=0)
# The share of an account's calls (of X-RateLimit-Limit and the like) that reading what comes
# back (the inbox) leaves to publishing: at or below it, ingestion waits for the reset.
CXHUB_READ_RESERVE_FRACTION = env_float("CXHUB_READ_RESERVE_FRACTION", 0.25, minimum=0.0)
# The inbox's reading of the networks (inbox/ingestion.py): the dispatcher runs this often …
CXHUB_INBOX_SECONDS = env_int("CXHUB_INBOX_SECONDS", 15, minimum=1)
# … and takes each account again after an interval that adapts to its activity, between these.
CXHUB_INBOX_MIN_INTERVAL_SECONDS = env_int("CXHUB_INBOX_MIN_INTERVAL_SECONDS", 60, minimum=1)
CXHUB_INBOX_MAX_INTERVAL_SECONDS = env_int("CXHUB_INBOX_MAX_INTERVAL_SECONDS", 900, minimum=1)
# A run claimed and not finished after this long (its worker lost) is claimed again.
CXHUB_INBOX_LEASE_SECONDS = env_int("CXHUB_INBOX_LEASE_SECONDS", 600, minimum=10)
# Accounts claimed per dispatcher run; pages read per account run, and items asked per page.
CXHUB_INBOX_BATCH_SIZE = env_int("CXHUB_INBOX_BATCH_SIZE", 200, minimum=1)
CXHUB_INBOX_PAGES_PER_RUN = env_int("CXHUB_INBOX_PAGES_PER_RUN", 5, minimum=1)
CXHUB_INBOX_PAGE_SIZE = env_int("CXHUB_INBOX_PAGE_SIZE", 40, minimum=1)
# Kept items posted in the last RECHECK_DAYS are asked about again (deleted or hidden on their
# network since?) when not asked for RECHECK_HOURS; the dispatcher runs this often and claims at
# most this many items a run (inbox/recheck.py).
CXHUB_INBOX_RECHECK_SECONDS = env_int("CXHUB_INBOX_RECHECK_SECONDS", 900, minimum=1)
CXHUB_INBOX_RECHECK_DAYS = env_int("CXHUB_INBOX_RECHECK_DAYS", 7, minimum=1)
CXHUB_INBOX_RECHECK_HOURS = env_int("CXHUB_INBOX_RECHECK_HOURS", 24, minimum=1)
CXHUB_INBOX_RECHECK_BATCH_SIZE = env_int("CXHUB_INBOX_RECHECK_BATCH_SIZE", 2000, minimum=1)
# Our published posts' figures (publishing/engagement.py): the dispatcher of readings runs this
# often, and claims at most this many targets a run.
CXHUB_ENGAGEMENT_SECONDS = env_int("CXHUB_ENGAGEMENT_SECONDS", 60, minimum=1)
CXHUB_ENGAGEMENT_BATCH_SIZE = env_int("CXHUB_ENGAGEMENT_BATCH_SIZE", 500, minimum=1)
# The demo's sandbox accounts hear back: one generated item every this many seconds (0: never;
# `make run` sets 60).
CXHUB_SANDBOX_INBOUND_SECONDS = env_int("CXHUB_SANDBOX_INBOUND_SECONDS", 0, minimum=0)
# Listening (listening/collection.py): the dispatcher runs this often, and takes each watch's
# source again after an interval that adapts to its activity, between these; a run claimed and
# not finished after the lease is claimed again; sources claimed per dispatcher run, pages read
# per source run, and posts asked per page. The longest interval is short (5 minutes): a quiet
# topic that surges is seen within minutes, which is what listening is for.
CXHUB_LISTENING_SECONDS = env_int("CXHUB_LISTENING_SECONDS", 15, minimum=1)
CXHUB_LISTENING_MIN_INTERVAL_SECONDS = env_int(
    "CXHUB_LISTENING_MIN_INTERVAL_SECONDS", 60, minimum=1
)
CXHUB_LISTENING_MAX_INTERVAL_SECONDS = env_int(
    "CXHUB_LISTENING_MAX_INTERVAL_SECONDS", 300, minimum=1
)
CXHUB_LISTENING_LEASE_SECONDS = env_int("CXHUB_LISTENING_LEASE_SECONDS", 600, minimum=10)
CXHUB_LISTENING_BATCH_SIZE = env_int("CXHUB_LISTENING_BATCH_SIZE", 500, minimum=1)
CXHUB_LISTENING_PAGES_PER_RUN = env_int("CXHUB_LISTENING_PAGES_PER_RUN", 5, minimum=1)
CXHUB_LISTENING_PAGE_SIZE = env_int("CXHUB_LISTENING_PAGE_SIZE", 40, minimum=1)
# What each watch keeps past its retention is purged this often (listening/services.py).
CXHUB_LISTENING_PURGE_SECONDS = env_int("CXHUB_LISTENING_PURGE_SECONDS", 3600, minimum=1)
# Tries of an alert's delivery to its watch's webhook before it fails (listening/webhooks.py).
CXHUB_LISTENING_WEBHOOK_ATTEMPTS = env_int("CXHUB_LISTENING_WEBHOOK_ATTEMPTS", 10, minimum=1)
# The demo's sandbox watches hear a steady made-up stream every this many seconds (0: never;
# `make run` sets 60).
CXHUB_SANDBOX_LISTENING_SECONDS = env_int("CXHUB_SANDBOX_LISTENING_SECONDS", 0, minimum=0)
# Tries at the network per target; then it fails and its author and leads are alerted.
CXHUB_PUBLISH_MAX_ATTEMPTS = env_int("CXHUB_PUBLISH_MAX_ATTEMPTS", 8, minimum=1)
# Retry n waits min(cap, base × 2^(n-1)) seconds, jittered down to half of that, or longer when
# the network's Retry-After says so.
CXHUB_PUBLISH_BACKOFF_BASE_SECONDS = env_int("CXHUB_PUBLISH_BACKOFF_BASE_SECONDS", 30, minimum=1)
CXHUB_PUBLISH_BACKOFF_CAP_SECONDS = env_int("CXHUB_PUBLISH_BACKOFF_CAP_SECONDS", 3600, minimum=1)
# Connect and read timeout of each webhook call; below the soft time limit, so a send times out
# (an unknown outcome, reconciled) before the task is stopped.
CXHUB_WEBHOOK_TIMEOUT_SECONDS = env_int("CXHUB_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
# The same for every call to a network (Mastodon, Bluesky, X, Facebook, Instagram, LinkedIn).
# (By default 10 s, or half the soft time limit when that is shorter.)
CXHUB_NETWORK_TIMEOUT_SECONDS = env_float(
    "CXHUB_NETWORK_TIMEOUT_SECONDS", min(10.0, CELERY_TASK_SOFT_TIME_LIMIT / 2), minimum=0.1
)
# Where each network's API lives, when not at its public address: {"x": "http://127.0.0.1:9000"}
# (test servers, a network's staging API). Keys are channel names.
CXHUB_NETWORK_BASE_URLS = env_json_object("CXHUB_NETWORK_BASE_URLS")
# Where the networks can reach cxhub from outside (https://cxhub.example.org): the OAuth
# callback addresses, and the signed, short-lived image links Instagram fetches (it takes no
# upload). Empty: taken from each request, which suits a single web address.
CXHUB_PUBLIC_URL = env_str("CXHUB_PUBLIC_URL", "").rstrip("/")
# cxhub's OAuth client registrations: {"x": {"client_id": "…", "client_secret": "…"}, …}.
# Mastodon needs none: cxhub registers itself with each server (networks.OAuthApp).
CXHUB_OAUTH_CLIENTS = env_json_object("CXHUB_OAUTH_CLIENTS")
# Tokens expiring within this many seconds are renewed ahead by the periodic refresh task.
# How often the renewal runs (a periodic task).
CXHUB_TOKEN_REFRESH_SECONDS = env_int("CXHUB_TOKEN_REFRESH_SECONDS", 600, minimum=60)
CXHUB_TOKEN_REFRESH_MARGIN_SECONDS = env_int("CXHUB_TOKEN_REFRESH_MARGIN_SECONDS", 3600, minimum=60)
# A target `sending` for longer than this lost its worker: beyond the hard time limit, so a
# live send is never taken for a dead one.
CXHUB_SENDING_STUCK_SECONDS = env_int(
    "CXHUB_SENDING_STUCK_SECONDS", CELERY_TASK_TIME_LIMIT + 60, minimum=2
)
# A target `queued` for longer than this lost its message (broker restarted empty, enqueue
# failed): long enough for a normal backlog to drain.
CXHUB_QUEUED_STUCK_SECONDS = env_int("CXHUB_QUEUED_STUCK_SECONDS", 600, minimum=1)
# Webhooks never reach private, loopback or link-local addresses (an account's URL must not
# probe the internal network), except the networks listed here, e.g. "127.0.0.1/32" in tests.
CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = env_list("CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS", [])
# The filesystem broker is polled: a worker takes at most one message per pool process per
# poll, so kombu's default of 1 s would cap the embedded setup at 2 tasks a second.
CXHUB_FILESYSTEM_BROKER_POLL_MS = env_int("CXHUB_FILESYSTEM_BROKER_POLL_MS", 100, minimum=10)
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = CXHUB_FILESYSTEM_BROKER_POLL_MS / 1000
if CXHUB_NETWORK_TIMEOUT_SECONDS >= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfiguredEnv(
        "CXHUB_NETWORK_TIMEOUT_SECONDS must be below CXHUB_TASK_SOFT_TIME_LIMIT"
    )
if CXHUB_WEBHOOK_TIMEOUT_SECONDS >= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfiguredEnv(
        "CXHUB_WEBHOOK_TIMEOUT_SECONDS must be below CXHUB_TASK_SOFT_TIME_LIMIT"
    )
if CXHUB_WORKER_LOST_SECONDS < 3 * CXHUB_WORKER_BEAT_SECONDS:
    raise ImproperlyConfiguredEnv(
        "CXHUB_WORKER_LOST_SECONDS must be at least three CXHUB_WORKER_BEAT_SECONDS (a worker "
        "that missed one beat is not dead)"
    )
if CXHUB_SENDING_STUCK_SECONDS <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfiguredEnv(
        "CXHUB_SENDING_STUCK_SECONDS must exceed CXHUB_TASK_TIME_LIMIT (a send still running "
        "would be taken for a lost one)"
    )
if CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 10**9) <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfiguredEnv(
        "CXHUB_BROKER_VISIBILITY_TIMEOUT must exceed CXHUB_TASK_TIME_LIMIT (Redis would hand a "
        "running task to a second worker)"
    )

# Publishing rules of the organisation (preflight).
CXHUB_REQUIRE_ALT_TEXT = env_bool("CXHUB_REQUIRE_ALT_TEXT", True)
CXHUB_READING_GRADE_MAX = env_int("CXHUB_READING_GRADE_MAX", 9, minimum=1)
# Uploads: refused above these before any decoding. The byte limit is above the heaviest image
# any network takes (the webhook's 20 MiB; X's GIFs 15 MiB; tests/cxhub/test_upload_limit.py
# checks), since each upload is re-encoded per network anyway. A file past it, or a request past
# it plus the form's other fields (DATA_UPLOAD_MAX_MEMORY_SIZE), is refused with 413 while it
# streams in, before it reaches the disk (cxhub/uploads.py).
CXHUB_UPLOAD_MAX_BYTES = env_int("CXHUB_UPLOAD_MAX_BYTES", 25_000_000, minimum=1)
CXHUB_UPLOAD_MAX_PIXELS = env_int("CXHUB_UPLOAD_MAX_PIXELS", 80_000_000, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_HANDLERS = [
    "cxhub.uploads.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Where uploads above FILE_UPLOAD_MAX_MEMORY_SIZE are spooled while a request reads them; empty:
# the system's temporary directory.
FILE_UPLOAD_TEMP_DIR = env_str("CXHUB_UPLOAD_TEMP_DIR", "") or None

# Email: SMTP when EMAIL_HOST is given, else the console (development only: it prints every
# message, password reset links included, to the log). EMAIL_BACKEND overrides both.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
# EMAIL_HOST_PASSWORD_FILE may point to a file holding it.
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", EMAIL_PORT == 587)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", EMAIL_PORT == 465)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfiguredEnv("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "cxhub@localhost")

# Operating: logs and metrics (README "Operating: metrics and logs") --------------------------
# Logs: one JSON object a line (the default with DEBUG off), or plain lines for people (DEBUG,
# `make run`); both carry the request id (cxhub/logs.py).
CXHUB_LOG_FORMAT = env_str("CXHUB_LOG_FORMAT", "plain" if DEBUG else "json")
if CXHUB_LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfiguredEnv(f"CXHUB_LOG_FORMAT={CXHUB_LOG_FORMAT!r} is not json or plain")
# /metrics answers only a bearer of this token (CXHUB_METRICS_TOKEN_FILE works too); unset,
# there is no /metrics (404).
CXHUB_METRICS_TOKEN = env_str("CXHUB_METRICS_TOKEN", "").strip()
if CXHUB_METRICS_TOKEN and len(CXHUB_METRICS_TOKEN) < 32:
    raise ImproperlyConfiguredEnv(
        "CXHUB_METRICS_TOKEN is too short: give at least 32 random characters"
    )
# Tries and their lateness are counted over this window (cxhub/monitoring.py).
CXHUB_METRICS_WINDOW_SECONDS = env_int("CXHUB_METRICS_WINDOW_SECONDS", 3600, minimum=60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "cxhub.logs.JsonFormatter"},
        "plain": {"()": "cxhub.logs.PlainFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": CXHUB_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # pysaml2 logs each assertion's subject at INFO: people's identifiers stay out of logs.
        "saml2": {"level": "WARNING"},
        "xmlschema": {"level": "WARNING"},
    },
}
