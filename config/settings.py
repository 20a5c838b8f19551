"""Settings, all from the environment (see .env.example for every variable).

Nothing set = the embedded default: SQLite, local-memory cache, in-memory channel
layer, Celery tasks run inline. ``DATABASE_URL``/``REDIS_URL`` switch to
PostgreSQL/Redis. With ``DEBUG`` off the process refuses an unsafe configuration.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str, load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

INSECURE_SECRET_KEY = "django-insecure-dev-only-change-me"
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", INSECURE_SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else [])

if not DEBUG:
    if (
        SECRET_KEY == INSECURE_SECRET_KEY
        or SECRET_KEY.startswith("django-insecure")
        or len(SECRET_KEY) < 50
        or len(set(SECRET_KEY)) < 5
    ):
        raise ImproperlyConfigured(
            "SECRET_KEY is unsafe: with DEBUG off set SECRET_KEY to a random string of 50+ characters"
            " (for development, `make run` writes a .env with DEBUG=true and a generated key)."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS is empty: with DEBUG off list the host names this site serves.")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from this process (no CDN)
    "django_filters",
    "corsheaders",
    "channels",
    "django_celery_beat",
    "core",
    "organizations",
    "accounts",
    "workflows",
    "requests",
    "approvals",
    "notifications",
    "auditlogs",
    "webhooks",
    "sso",
]

MIDDLEWARE = [
    "core.middleware.MetricsMiddleware",
    "core.middleware.RequestIdMiddleware",
    "core.middleware.RequestLimitsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
CSRF_FAILURE_VIEW = "core.views.csrf_failure"  # JSON envelope under /api/
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
            ]
        },
    }
]

# --- Database ---------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60), conn_health_checks=True)
}
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if IS_POSTGRES and env_bool("DATABASE_POOL", False):
    # psycopg's pool instead of one persistent connection per worker thread: for ASGI servers,
    # whose sync views run on threads that come and go (docs/benchmarks.md "Serving").
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # the pool checks connections itself
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN", 2),
        "max_size": env_int("DATABASE_POOL_MAX", 10),
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),
    }
if IS_POSTGRES and env_bool("DATABASE_SERVER_SIDE_BINDING", True):
    # Parameters bound by the server, not quoted into the SQL by psycopg (a tenth of the decision
    # path's Python time went there), and a statement sent five times on a connection is prepared:
    # the hot statements are constant strings (core/compiled_query.py, WriteBatch), and a prepared
    # one is not parsed and planned again (issue 14, docs/benchmarks.md). Both off behind a pooler
    # in transaction mode that cannot keep prepared statements (docs/deployment.md).
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    # Reports, the audit export and audit verification read here (core/db_router.py, docs/scaling.md).
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL, conn_max_age=env_int("CONN_MAX_AGE", 60), conn_health_checks=True
    )
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}  # tests: the replica is the primary itself
DATABASE_ROUTERS = ["core.db_router.ReplicaRouter"]
if not IS_POSTGRES:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Every transaction takes SQLite's write lock when it begins (BEGIN IMMEDIATE), and a busy
    # one waits up to 20 s for it: concurrent writers queue, as row locks make them on PostgreSQL,
    # instead of failing "database is locked" when a read transaction upgrades to a write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(transaction_mode="IMMEDIATE", timeout=20)
    # "Test" DB name under SQLite: a file, so threads of the smoke test share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}

# --- Redis: cache, rate limits, channel layer, Celery ---------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    # Rate-limit counters only; degrades to per-process memory while Redis is down (core/cache.py).
    CACHES = {"default": {"BACKEND": "core.cache.ResilientRedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "core.channel_layer.BlockingPoolRedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "max_connections": env_int("CHANNEL_LAYER_MAX_CONNECTIONS", 100)},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# How long an open WebSocket waits for the channel layer (Redis) to come back before it closes
# with 1013 Try Again Later (notifications/consumers.py).
WS_LAYER_GRACE_SECONDS = env_int("WS_LAYER_GRACE_SECONDS", 30)

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
# No broker: run tasks inline in the calling process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- Auth -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.ActiveUserJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.IsOrgMember"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.DefaultPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": [
        "core.filters.FilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.BoundedJSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    "DEFAULT_METADATA_CLASS": "core.metadata.SafeMetadata",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.WindowUserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env_str("API_THROTTLE_RATE", "6000/min")},
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "CHECK_USER_IS_ACTIVE": True,
}
# How long a process may serve an authenticated user (with organization, department, roles) from
# its own copy instead of the database; every change through the services revokes the copies at
# once through Redis (accounts/auth_cache.py, docs/security.md). 0: the database every request.
AUTH_USER_CACHE_SECONDS = env_int("AUTH_USER_CACHE_SECONDS", 30)

# Login rate limits (django-ratelimit syntax), per client IP and per account.
LOGIN_RATE_PER_IP = env_str("LOGIN_RATE_PER_IP", "20/m")
LOGIN_RATE_PER_ACCOUNT = env_str("LOGIN_RATE_PER_ACCOUNT", "5/m")
REFRESH_RATE_PER_IP = env_str("REFRESH_RATE_PER_IP", "60/m")
# Account security (accounts/, docs/security.md).
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3600)  # seconds a reset link stays valid
# The reset request answers after at least this long, account or not (no enumeration by timing).
PASSWORD_RESET_MIN_MS = env_int("PASSWORD_RESET_MIN_MS", 300)
MFA_TOKEN_SECONDS = env_int("MFA_TOKEN_SECONDS", 300)  # the login's second step must follow within this
MFA_RATE_PER_ACCOUNT = env_str("MFA_RATE_PER_ACCOUNT", "5/m")  # second-factor attempts per account
MFA_RATE_PER_IP = env_str("MFA_RATE_PER_IP", "20/m")
PASSWORD_RESET_RATE_PER_IP = env_str("PASSWORD_RESET_RATE_PER_IP", "10/m")
PASSWORD_RESET_RATE_PER_ACCOUNT = env_str("PASSWORD_RESET_RATE_PER_ACCOUNT", "3/h")
PASSWORD_RESET_CONFIRM_RATE_PER_IP = env_str("PASSWORD_RESET_CONFIRM_RATE_PER_IP", "10/m")
PASSWORD_RESET_CONFIRM_RATE_PER_ACCOUNT = env_str("PASSWORD_RESET_CONFIRM_RATE_PER_ACCOUNT", "5/m")
# Single sign-on (docs/security.md, "Single sign-on")
OIDC_RATE_PER_IP = env_str("OIDC_RATE_PER_IP", "30/m")
OIDC_CALLBACK_URL = env_str("OIDC_CALLBACK_URL", "")  # empty: this server's own auth/oidc/callback/
OIDC_ATTEMPT_SECONDS = env_int("OIDC_ATTEMPT_SECONDS", 600)  # how long a started sign-in may take
OIDC_HTTP_TIMEOUT = 10.0
OIDC_CLOCK_SKEW_SECONDS = 60
OIDC_METADATA_CACHE_SECONDS = env_int("OIDC_METADATA_CACHE_SECONDS", 3600)
RATELIMIT_VIEW = "core.views.ratelimited"
TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)
if not REDIS_URL:
    # Local memory is per process: fine for the one-process embedded default only.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

SPECTACULAR_SETTINGS = {
    "TITLE": "Enterprise Workflow & Approval API",
    "DESCRIPTION": "Approval workflows, requests, tasks, notifications and a tamper-evident audit log.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # The docs pages work offline: their assets come from drf-spectacular-sidecar (pinned, served as
    # static files), ReDoc's template loads no web fonts (templates/drf_spectacular/redoc.html), and
    # Swagger UI sends the schema to no online validator.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.time_without_offset",
    ],
}

# --- HTTP, static, media --------------------------------------------------------
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = env_str("MEDIA_ROOT", str(BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
# Deepest JSON nesting accepted in a request body or WebSocket frame (core/parsers.py); a form
# schema five objects deep is about 12 levels inside a workflow body.
JSON_MAX_DEPTH = 64
# URL and header limits answered by the app (core/middleware.py, 414/431 envelope); gunicorn's own
# limits are set above them (config/gunicorn.conf.py) so the app, not the server, answers.
REQUEST_MAX_URL_CHARS = 4096
REQUEST_MAX_HEADER_BYTES = 8190
REQUEST_MAX_HEADERS = 100
# Form data (workflows/form_schema.py): longest string value, and the time one validation may take
# before the submit is refused (400) instead of holding a worker.
FORM_MAX_STRING_CHARS = env_int("FORM_MAX_STRING_CHARS", 10_000)
FORM_VALIDATION_BUDGET_MS = env_int("FORM_VALIDATION_BUDGET_MS", 500)
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")  # base of e-mail links; `make run` sets its own address
# Signed approve/reject links in task e-mails (approvals/action_links.py): valid until the task's due
# time + the grace, at most the maximum after they were sent; uses per client address per minute.
ACTION_LINK_GRACE_DAYS = env_int("ACTION_LINK_GRACE_DAYS", 7)
ACTION_LINK_MAX_DAYS = env_int("ACTION_LINK_MAX_DAYS", 30)
ACTION_LINK_RATE_PER_IP = env_str("ACTION_LINK_RATE_PER_IP", "30/m")

# --- E-mail ---------------------------------------------------------------------
EMAIL_URL = env_str("EMAIL_URL", "")
if EMAIL_URL:
    from config.email import parse_email_url

    globals().update(parse_email_url(EMAIL_URL))
else:
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
    EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "approvals@localhost")

# --- Security (production) ------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("SECURE_PROXY_SSL_HEADER", False) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]  # probes and scrapes talk plain HTTP inside the network
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Logging ----------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Domain knobs -----------------------------------------------------------------
SLA_SCAN_INTERVAL_SECONDS = env_int("SLA_SCAN_INTERVAL_SECONDS", 60)
SLA_SCAN_BATCH_SIZE = env_int("SLA_SCAN_BATCH_SIZE", 100)  # tasks claimed and done per transaction (docs/sla.md)
SLA_SCAN_LIMIT = env_int("SLA_SCAN_LIMIT", 5000)  # at most this many reminders, and as many escalations, per scan
# The embedded default (no broker) runs core/periodic.py in-process; `make run` sets EMBEDDED_SCHEDULER=true.
EMBEDDED_SCHEDULER = not CELERY_BROKER_URL and env_bool("EMBEDDED_SCHEDULER", False)

# --- Notifications: e-mail delivery (notifications/, docs/notifications.md) ---------------
EMAIL_RETRY_INTERVAL_SECONDS = env_int("EMAIL_RETRY_INTERVAL_SECONDS", 60)  # the pending-e-mail sweep
EMAIL_PENDING_GRACE_SECONDS = env_int("EMAIL_PENDING_GRACE_SECONDS", 10)  # the sweep leaves younger ones to their task
# The e-mail hand-off after commit: one Celery message per window per process with the ids of all
# its commits (core/events.py enqueue_batch); 0 publishes at each commit. Keep it far below the grace.
EMAIL_DISPATCH_WINDOW_MS = env_int("EMAIL_DISPATCH_WINDOW_MS", 200)
EMAIL_MAX_ATTEMPTS = env_int("EMAIL_MAX_ATTEMPTS", 8)  # then the delivery is marked failed
EMAIL_RETRY_BACKOFF_SECONDS = env_int("EMAIL_RETRY_BACKOFF_SECONDS", 30)  # doubled per failed attempt
EMAIL_RETRY_BACKOFF_MAX_SECONDS = env_int("EMAIL_RETRY_BACKOFF_MAX_SECONDS", 3600)
# Link to a request in e-mails: a page a person can open in a browser. The admin's page of the
# request (staff) until a signed action page exists; a front end may point this at its own page.
NOTIFICATION_REQUEST_URL = env_str("NOTIFICATION_REQUEST_URL", "{site_url}/admin/requests/request/{id}/change/")

# --- Operations: metrics (docs/operations.md) -----------------------------------------------
METRICS_TOKEN = env_str("METRICS_TOKEN", "")  # bearer token for /metrics; empty = loopback clients only
METRICS_DB_CACHE_SECONDS = env_int("METRICS_DB_CACHE_SECONDS", 15)  # database gauges computed at most this often
CELERY_METRICS_PORT = env_int("CELERY_METRICS_PORT", 0)  # the Celery worker serves /metrics here (0: off)
CELERY_METRICS_ADDR = env_str("CELERY_METRICS_ADDR", "127.0.0.1")

# --- Outgoing webhooks (webhooks/, docs/webhooks.md) -----------------------------------------------
WEBHOOK_REQUIRE_HTTPS = env_bool("WEBHOOK_REQUIRE_HTTPS", not DEBUG)
# Private, loopback and link-local destinations are refused unless listed here (hosts or CIDRs).
WEBHOOK_ALLOWED_PRIVATE_NETWORKS = env_list("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", [])
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 12)  # then the delivery is marked failed
WEBHOOK_RETRY_BACKOFF_SECONDS = env_int("WEBHOOK_RETRY_BACKOFF_SECONDS", 30)  # doubled per failed attempt
WEBHOOK_RETRY_BACKOFF_MAX_SECONDS = env_int("WEBHOOK_RETRY_BACKOFF_MAX_SECONDS", 6 * 3600)
WEBHOOK_DISABLE_AFTER_HOURS = env_int("WEBHOOK_DISABLE_AFTER_HOURS", 72)  # failing this long: disabled, admins told
WEBHOOK_SECRET_GRACE_HOURS = env_int("WEBHOOK_SECRET_GRACE_HOURS", 24)  # the old secret still signs after a rotation
WEBHOOK_SWEEP_INTERVAL_SECONDS = env_int("WEBHOOK_SWEEP_INTERVAL_SECONDS", 60)
WEBHOOK_SWEEP_GRACE_SECONDS = env_int("WEBHOOK_SWEEP_GRACE_SECONDS", 10)  # younger deliveries are left to their task
