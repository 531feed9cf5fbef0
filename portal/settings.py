"""Settings come from the environment (DESIGN §10). With nothing set: SQLite under var/, dev keys there."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from portal import devkeys

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LOCKSTEP_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", "SECRET_KEY" not in os.environ)
_dev = devkeys.load_or_create(VAR_DIR) if "SECRET_KEY" not in os.environ else {}
SECRET_KEY = os.environ.get("SECRET_KEY") or _dev["SECRET_KEY"]
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS") or [k for k in _dev.get("FIELD_ENCRYPTION_KEYS", "").split(",") if k]
PIN_FINGERPRINT_KEY = os.environ.get("PIN_FINGERPRINT_KEY") or _dev.get("PIN_FINGERPRINT_KEY", "")
if not FIELD_ENCRYPTION_KEYS or not PIN_FINGERPRINT_KEY:
    raise RuntimeError("FIELD_ENCRYPTION_KEYS and PIN_FINGERPRINT_KEY must be set when SECRET_KEY is set")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "portal",
    "locks",
    "providers",
]

MIDDLEWARE = [
    "portal.error_pages.FriendlyNotFoundMiddleware",  # outermost: sees every 404 Django renders
    "django.middleware.security.SecurityMiddleware",
    "providers.webhook_middleware.WebhookShortcut",  # vendors' deliveries need none of what follows
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): this session passed a second factor
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.TenantMiddleware",
    "portal.session_timeout.AdminIdleTimeoutMiddleware",  # after TenantMiddleware: needs the membership
    "portal.two_factor.SecondFactorMiddleware",  # after TenantMiddleware: needs the membership
    "axes.middleware.AxesMiddleware",
]

# Two-factor sign-in (DESIGN §9; portal/two_factor.py). Wrong codes are throttled by django-otp, per device
# and in the database (every worker sees them): after n failures in a row the next try waits FACTOR * 2^(n-1)
# seconds, so ten wrong guesses already cost a quarter of an hour.
OTP_TOTP_ISSUER = "Lockstep"
OTP_TOTP_THROTTLE_FACTOR = 2
OTP_RECOVERY_THROTTLE_FACTOR = 2

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.tenancy",
            ],
        },
    },
]

_database_url = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lockstep.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        _database_url,
        # Persistent connections: a new PostgreSQL connection per request (or per enqueued task, since
        # django-q's ORM broker closes "old" connections) costs more than the request itself.
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "0" if _database_url.startswith("sqlite") else "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One machine, one worker: wait for the writer instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sessions (DESIGN §9). Twelve hours covers a front-desk shift without signing in again, yet a lost or
# stolen cookie is dead by the next day (Django's default is two weeks). Admins, whose sessions can change
# members, credentials and API keys, are also signed out after this many idle minutes
# (portal/session_timeout.py).
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(12 * 60 * 60)))
SESSION_ADMIN_IDLE_MINUTES = int(os.environ.get("SESSION_ADMIN_IDLE_MINUTES", "30"))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes 8). Failures are counted per username across all addresses (guessing one
# account from a botnet) and per client address across all usernames (spraying one password over many
# accounts); either count reaching the limit pauses logins for AXES_COOLOFF_TIME. A successful login
# does not reset the counts, or a sprayer with an account of their own could clear them between guesses.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username"], ["ip_address"]]
AXES_RESET_ON_SUCCESS = False
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client address: REMOTE_ADDR, unless TRUSTED_PROXY_COUNT reverse proxies that append to
# X-Forwarded-For sit in front (then the entry the outermost of them wrote). Without it, everyone behind
# the proxy would share one address and one failure count (portal/client_ip.py).
AXES_TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
AXES_CLIENT_IP_CALLABLE = "portal.client_ip.client_ip_address"

EMAIL_URL = os.environ.get("EMAIL_URL", "console://")
if EMAIL_URL.startswith("console:"):
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
elif EMAIL_URL.startswith("locmem:"):
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
else:
    from urllib.parse import unquote, urlparse

    _mail = urlparse(EMAIL_URL)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _mail.hostname or "localhost"
    EMAIL_PORT = _mail.port or 25
    EMAIL_HOST_USER = unquote(_mail.username or "")
    EMAIL_HOST_PASSWORD = unquote(_mail.password or "")
    EMAIL_USE_TLS = _mail.scheme in {"smtp+tls", "submission"}
    # A mail server that stops answering must not hold the message worker (and its stay's code rows) forever.
    EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Lockstep <lockstep@localhost>")
# Guest texts (portal/sms.py): the console by default; "portal.sms.TwilioSmsBackend" with the TWILIO_*
# variables sends them through Twilio, whose delivery reports come back signed with the auth token.
SMS_BACKEND = os.environ.get("SMS_BACKEND", "portal.sms.ConsoleSmsBackend")
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM = os.environ.get("TWILIO_FROM", "")  # a phone number, or a Messaging Service SID ("MG…")

Q_BROKER = os.environ.get("Q_BROKER", "orm")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
Q_CLUSTER = {
    "name": "lockstep",
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    "timeout": 120,
    "retry": 180,
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 500,
    "poll": 0.5,
    "label": "Tasks",
}
if Q_BROKER == "redis":
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Throttle counters live in the cache (DESIGN §9). Production runs several processes, so they must share
# one: Redis when it is configured; a single dev process makes do with its own memory.
# Vendor rate-limit buckets (locks/ratelimits.py), shared by every worker on every machine: in Redis when
# Redis is configured, else in the database (a row per bucket).
RATE_LIMIT_STORE = "redis" if Q_BROKER == "redis" or "REDIS_URL" in os.environ else "database"
if Q_BROKER == "redis" or "REDIS_URL" in os.environ:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# PIN reveals per user (or API key) per minute, pages and API together; the next one is a 429 and mails
# the tenant's admins (portal/throttles.py).
PIN_REVEALS_PER_MINUTE = int(os.environ.get("PIN_REVEALS_PER_MINUTE", "30"))
# The guest page (portal/guest_views.py): requests per minute from one address (guessing links costs
# time), and "My code doesn't work" reports per stay per hour.
GUEST_PAGE_REQUESTS_PER_MINUTE = int(os.environ.get("GUEST_PAGE_REQUESTS_PER_MINUTE", "30"))
GUEST_REPORTS_PER_HOUR = int(os.environ.get("GUEST_REPORTS_PER_HOUR", "5"))

# Content-Security-Policy (django-csp 4): our own origin only; no inline script or style anywhere (htmx's
# indicator style is switched off in base.html and lives in lockstep.css). /api/docs/ relaxes styles.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
    },
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # One budget per API key and one per session user (portal/api/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": [
        "portal.api.throttling.ApiKeyRateThrottle",
        "portal.api.throttling.SessionUserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": os.environ.get("API_THROTTLE_KEY_RATE", "120/min"),
        "api_user": os.environ.get("API_THROTTLE_USER_RATE", "60/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lockstep API",
    "DESCRIPTION": "Bookings, locks and guest door codes for property-management systems.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status` with different choices; name each enum after its model so the
    # schema is stable (and `check --deploy --fail-level WARNING` stays clean: drf_spectacular.W001).
    "ENUM_NAME_OVERRIDES": {
        "BookingStatusEnum": "portal.models.BookingStatus",
        "CodeStatusEnum": "locks.models.CodeStatus",
        "CodePurposeEnum": "locks.models.CodePurpose",
        "PersonCodePurposeEnum": "locks.models.PEOPLE_PURPOSE_CHOICES",
        "IssueStatusEnum": "locks.models.IssueStatus",
        "AccountStatusEnum": "providers.models.AccountStatus",
    },
}

# Engine timing (DESIGN §4); settings so operators and tests can tune them.
LOCKSTEP = {
    "NATIVE_PRELOAD_HOURS": int(os.environ.get("NATIVE_PRELOAD_HOURS", "72")),
    "JUST_IN_TIME_MINUTES": int(os.environ.get("JUST_IN_TIME_MINUTES", "60")),
    "SWEEP_STALE_MINUTES": int(os.environ.get("SWEEP_STALE_MINUTES", "5")),
    "SWEEP_HARD_LIMIT_MINUTES": int(os.environ.get("SWEEP_HARD_LIMIT_MINUTES", "30")),
    "ATTENTION_HOURS": 24,
}

# Outbound HTTP (providers/egress.py, DESIGN §9): vendor APIs and iCal feeds. Private, loopback and
# link-local addresses are refused unless EGRESS_ALLOW_PRIVATE_ADDRESSES is set on purpose (test stubs on
# 127.0.0.1); DEBUG does not set it. The deadline covers a whole request: connect, redirects and body.
EGRESS_ALLOW_PRIVATE_ADDRESSES = env_bool("EGRESS_ALLOW_PRIVATE_ADDRESSES", False)
EGRESS_DEADLINE_SECONDS = float(os.environ.get("EGRESS_DEADLINE_SECONDS", "30"))
EGRESS_MAX_RESPONSE_BYTES = int(os.environ.get("EGRESS_MAX_RESPONSE_BYTES", str(5 * 1024 * 1024)))
EGRESS_MAX_REDIRECTS = 3  # same-host hops, feeds only; vendors get none

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the <body hx-headers>, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors_without_traceback": {"()": "portal.error_pages.ClientErrorsWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's own console handler (DEBUG) would print every record a second time beside the root's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # One line per 403/404, without the traceback of the PermissionDenied/Http404 behind it.
        "django.request": {"filters": ["client_errors_without_traceback"]},
    },
}
