"""Django settings, read from the environment (12-factor). See docs/configuration.md for every variable.

Profiles (``WORKFLOW_PROFILE``): ``dev`` (the default; what ./run uses), ``test`` and ``production``. A
production profile requires ``SECRET_KEY`` and refuses ``DEBUG``. Engine tunables live in ``WORKFLOW_ENGINE``
under the original product's key names, declared and validated in ``workflow_engine.tunables``.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from workflow_engine import tunables
from workflow_engine.env import (
    check_redis_url,
    check_secret_key,
    connections_from_env,
    database_from_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_rate,
    env_secret,
    env_str,
    parse_sentinel_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
PROFILE = env_choice("WORKFLOW_PROFILE", "dev", ("dev", "test", "production"))

SECRET_KEY = env_secret("SECRET_KEY") or ""
if not SECRET_KEY:
    if PROFILE == "production":
        raise ImproperlyConfigured(
            "SECRET_KEY (or SECRET_KEY_FILE) is required when WORKFLOW_PROFILE=production"
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
if PROFILE == "production":
    check_secret_key(SECRET_KEY)  # no placeholder of the examples, nothing short (docs/security.md)
DEBUG = env_bool("DEBUG", False)
if DEBUG and PROFILE == "production":
    raise ImproperlyConfigured("DEBUG=true is refused when WORKFLOW_PROFILE=production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["*"] if PROFILE != "production" else [])
# Origins (scheme://host[:port]) whose unsafe requests a session may make, e.g. the console's address behind
# a TLS-terminating proxy: https://console.example.com (docs/configuration.md, "Sessions")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Session and CSRF cookies: HttpOnly session, SameSite=Lax; Secure (HTTPS only) in production by default
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PROFILE == "production")
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", SESSION_COOKIE_SECURE)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # the console's script reads it to send X-CSRFToken
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600, low=60, high=90 * 86400)
# HTTPS (docs/security.md, "HTTPS behind nginx"). TLS ends at nginx, which redirects port 80 to 443; the
# gateways speak plain HTTP on 8080 to nginx, to probes and to the guide's own `curl localhost:8080/...`, so
# Django's redirect is off by default (check --deploy's security.W008 is silenced for that reason only) and
# may be turned on (health checks exempt). HSTS goes out on HTTPS requests only: gunicorn marks a request
# secure when a FORWARDED_ALLOW_IPS proxy says X-Forwarded-Proto: https.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PROFILE == "production" else 0, low=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PROFILE == "production")
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^health(/|$)"]
# For a WSGI server other than our gunicorn, behind a proxy that always sets X-Forwarded-Proto: never when
# clients can reach the gateway directly, since they could then claim HTTPS.
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = [] if SECURE_SSL_REDIRECT else ["security.W008"]

# --- the node -------------------------------------------------------------------------------------------
ROLE_NAMES = ("coordinator", "worker", "api-gateway")
WORKFLOW_ROLES = env_list("WORKFLOW_ROLES", list(ROLE_NAMES))
for _role in WORKFLOW_ROLES:
    if _role not in ROLE_NAMES:
        raise ImproperlyConfigured(
            f"WORKFLOW_ROLES contains {_role!r}: expected a subset of {', '.join(ROLE_NAMES)}"
        )
WORKFLOW_NODE_NAME = env_str("WORKFLOW_NODE_NAME", socket.gethostname())
HTTP_HOST = env_str("HTTP_HOST", "0.0.0.0" if PROFILE == "production" else "127.0.0.1")
HTTP_PORT = env_int("HTTP_PORT", 8080, low=1, high=65535)
METRICS_PORT = env_int("METRICS_PORT", 9095, low=1, high=65535)
GATEWAY_WORKERS = env_int("GATEWAY_WORKERS", 2, low=1, high=64)
GATEWAY_THREADS = env_int("GATEWAY_THREADS", 4, low=1, high=64)
# Slow clients (workflow_engine/gateway_worker.py): seconds to send a whole request head, then its body;
# each blocking read or write of a gateway thread; 0 turns the last one off.
GATEWAY_HEADER_TIMEOUT = env_int("GATEWAY_HEADER_TIMEOUT", 10, low=1, high=3600)
GATEWAY_BODY_TIMEOUT = env_int("GATEWAY_BODY_TIMEOUT", 30, low=1, high=3600)
GATEWAY_IO_TIMEOUT = env_int("GATEWAY_IO_TIMEOUT", 30, low=0, high=3600)
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 2, low=1, high=256)
DATA_DIR = Path(env_str("WORKFLOW_DATA_DIR", str(BASE_DIR / ".data")))

# --- applications ---------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.cluster",
    "apps.workflows",
    "apps.schedules",
    "apps.accounts",  # API tokens and sessions: only these settings name it (by dotted path)
    "apps.console",  # the web console under /ui/ (issue 13): a shell and static ES modules
    "apps.operations",  # backup, restore, workflow export and import (management commands only)
]

MIDDLEWARE = [
    "apps.workflows.api.middleware.RequestMetricsMiddleware",
    # /api/v1/workflows/ is served as /api/v1/workflows (workflow_engine/api/slashes.py)
    "workflow_engine.api.slashes.TrailingSlashMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # static files (admin, API docs) from the gateway itself, with no web server or CDN needed
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "workflow_engine.urls"
WSGI_APPLICATION = "workflow_engine.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


def _process_role(argv: list[str]) -> str:
    """PostgreSQL's ``application_name`` (visible in pg_stat_activity): which role this process plays."""
    line = " ".join(argv)
    for marker, role in (
        ("run_coordinator", "coordinator"),
        ("run_node", "node"),
        ("celery", "worker"),
        ("gunicorn", "gateway"),
    ):
        if marker in line:
            return role
    return "manage"


# --- storage --------------------------------------------------------------------------------------------
DATABASE_URL = env_secret("DATABASE_URL") or "postgresql://postgres@127.0.0.1:54320/workflow_engine"
_db = database_from_url(DATABASE_URL)
_db.update(
    {
        # Persistent connections with a health check, so a PostgreSQL restart is noticed and reconnected.
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60, low=0),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "application_name": env_str("WORKFLOW_PROCESS_ROLE", "") or _process_role(sys.argv),
            "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 5, low=1),
            # A process paused or cut off inside a transaction (SIGSTOP, a partition) would keep its row
            # locks, and with them its shards and executions, for as long as its TCP connection lives.
            # PostgreSQL ends such a session after this long without a query, and the locks go with it.
            # The same for a session stuck *sending* to a client that vanished (a partition): the server
            # gives up on unacknowledged data after tcp_user_timeout, and keepalives find a silent peer.
            "options": "-c idle_in_transaction_session_timeout="
            + str(env_int("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", 15000, low=1000))
            + " -c tcp_user_timeout="
            + str(env_int("DATABASE_TCP_USER_TIMEOUT_MS", 10000, low=1000))
            + " -c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3",
            **_db["OPTIONS"],  # type: ignore[dict-item]
        },
    }
)
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = check_redis_url(env_secret("REDIS_URL") or "redis://127.0.0.1:63790/0")
# sentinel://host1:26379,host2:26379/db?service_name=mymaster: every client asks the sentinels for the master
REDIS_SENTINEL = parse_sentinel_url(REDIS_URL) if REDIS_URL.startswith("sentinel://") else None

# --- Celery: messages are wake-up hints; PostgreSQL holds the truth (ARCHITECTURE.md §2) -----------------
CELERY_BROKER_URL = REDIS_SENTINEL.kombu_url() if REDIS_SENTINEL else REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "retry_on_timeout": True,
    "health_check_interval": 10,
    "global_keyprefix": env_str("REDIS_KEY_PREFIX", "wfe:"),
    # BRPOP returns at least this often, so a shard queue a worker starts consuming is polled within it
    # (kombu's default is 1 s); it bounds part of the failover time.
    "polling_interval": 0.25,
    # one Redis list per queue: no priority emulation (four lists per queue by default, so a worker
    # consuming 100 shard queues would BRPOP on 400 keys)
    "priority_steps": [0],
    **(REDIS_SENTINEL.kombu_options() if REDIS_SENTINEL else {}),
}
CELERY_TASK_IGNORE_RESULT = True
# Celery's Django fix-up closes every database connection after each task unless this is set; reusing them
# (with CONN_HEALTH_CHECKS catching a restarted server) saves a connect per task.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 200, low=0)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_ACKS_ON_FAILURE_OR_TIMEOUT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TASK_PUBLISH_RETRY = True
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# modules with tasks of your own that celery.task nodes run (WORKFLOW_CELERY_TASKS lists the allowed names)
CELERY_IMPORTS = env_list("WORKFLOW_CELERY_IMPORTS", [])
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 900, low=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 840, low=1)

# --- engine tunables (original key names), each declared once in workflow_engine/tunables.py --------------
# Read here from WORKFLOW_<KEY>; parsed, bounded and cross-checked at start (workflows' apps.py ready()).
WORKFLOW_ENGINE = tunables.from_environment(profile=PROFILE, data_dir=DATA_DIR)

# --- integrations used by nodes (docs/nodes.md) ------------------------------------------------------------
# Named database connections for db.* and mysql.* nodes: WORKFLOW_CONNECTION_<NAME>=<url> (or _FILE). A
# definition names the connection; credentials never travel in a definition.
WORKFLOW_CONNECTIONS = connections_from_env("WORKFLOW_CONNECTION_")
# Hosts http.request may call ("api.example.com", "*.example.com", "127.0.0.1:8000", "10.0.0.0/8:443"); empty:
# none. Non-public addresses (loopback, private, link-local...) need an IP or CIDR entry, even behind a name.
WORKFLOW_HTTP_ALLOWED_HOSTS = env_list("WORKFLOW_HTTP_ALLOWED_HOSTS", [])
# Callables python.call may run, as dotted paths ("myapp.tasks.enrich"); never code sent through the API.
WORKFLOW_PYTHON_CALLABLES = env_list("WORKFLOW_PYTHON_CALLABLES", [])
# Existing Celery tasks celery.task may run, by name; "*" allows any registered task.
WORKFLOW_CELERY_TASKS = env_list("WORKFLOW_CELERY_TASKS", [])

# --- API ------------------------------------------------------------------------------------------------
# Rate limits (workflow_engine/api/throttles.py): per user (token), per anonymous IP, and failed token
# authentications per IP. The test profile's are out of the suite's reach; its own tests set low ones.
_RATES = ("100000/min",) * 3 if PROFILE == "test" else ("600/min", "60/min", "20/min")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # named API tokens, as "Bearer <key>" or "Token <key>" (failures counted per IP), then browser
        # sessions, whose unsafe requests must carry the CSRF token (docs/security.md)
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "workflow_engine.api.throttles.UserRateThrottle",
        "workflow_engine.api.throttles.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_rate("WORKFLOW_RATE_LIMIT_USER", _RATES[0]),
        "anon": env_rate("WORKFLOW_RATE_LIMIT_ANON", _RATES[1]),
        "auth_failures": env_rate("WORKFLOW_RATE_LIMIT_AUTH_FAILURES", _RATES[2]),
        # password logins, per IP and per username (POST /api/v1/auth/login)
        "login": env_rate("WORKFLOW_RATE_LIMIT_LOGIN", _RATES[2] if PROFILE == "test" else "10/min"),
    },
    # proxies (nginx) trusted to append the client's address to X-Forwarded-For; 0: REMOTE_ADDR is the client
    "NUM_PROXIES": env_int("NUM_PROXIES", 0, low=0, high=10),
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "workflow_engine.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # rate-limit counters, shared by every gateway; short timeouts, since the limits fail open without Redis
    "throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": [REDIS_URL],  # a list: Django splits a string at the commas of a sentinel URL
        "KEY_PREFIX": env_str("REDIS_KEY_PREFIX", "wfe:") + "throttle",
        "OPTIONS": {
            "socket_timeout": 1,
            "socket_connect_timeout": 1,
            **({"pool_class": "workflow_engine.redis_client.SentinelPool"} if REDIS_SENTINEL else {}),
        },
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "workflow-engine API",
    "DESCRIPTION": "Durable, distributed workflows on Django, Celery, Redis and PostgreSQL.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- i18n, static ---------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env_str("STATIC_ROOT", "") or None  # only for `collectstatic` behind a web server
WHITENOISE_USE_FINDERS = True  # serve straight from the apps' static folders: no collectstatic step

# --- logging: JSON lines (docs/operations.md) ------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOG_FORMAT = env_choice("LOG_FORMAT", "json", ("json", "text"))
# a warning or error repeated (same logger, message and exception type) is written once per window, then
# one line with its count (workflow_engine/logs.py); 0 writes every one
LOG_REPEAT_WINDOW = env_int("LOG_REPEAT_WINDOW", 60, low=0, high=3600)
# gunicorn's access log (one line per request, JSON like the rest); nginx usually logs requests already
GATEWAY_ACCESS_LOG = env_bool("GATEWAY_ACCESS_LOG", False)
LOGGING_CONFIG = "workflow_engine.logs.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "workflow_engine.logs.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s [%(name)s] %(message)s"},
    },
    "filters": {"chatter": {"()": "workflow_engine.logs.QuietChatter"}},
    "handlers": {
        "console": {
            "()": "workflow_engine.logs.Handler",
            "repeat_window": LOG_REPEAT_WINDOW,
            "formatter": LOG_FORMAT,
            "filters": ["chatter"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery": {"level": "WARNING" if PROFILE == "test" else "INFO"},
    },
}
