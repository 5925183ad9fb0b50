"""Settings, read from the environment through one django-environ object.

With nothing set, the project runs on the embedded default: SQLite under `var/`, the in-process
signal store and eager Celery tasks. `DATABASE_URL`, `REDIS_URL` and `CELERY_BROKER_URL` switch
the same code onto PostgreSQL, Redis and a real broker.
"""

import secrets
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from core.logs import logging_config
from core.sentry import init_sentry

if TYPE_CHECKING:
    from django.http import HttpRequest

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# development | test | production
RANKWELL_ENV = env.str("RANKWELL_ENV", default="development")
PRODUCTION = RANKWELL_ENV == "production"
DEBUG = env.bool("DEBUG", default=RANKWELL_ENV == "development")


def _development_secret_key() -> str:
    """A random key kept under var/, so sessions survive restarts without a secret in the repo."""
    VAR_DIR.mkdir(exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when RANKWELL_ENV=production")
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set when RANKWELL_ENV=production")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or _development_secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "customers",
    "catalog",
    "events",
    "ranking",
    "merchandising",
    "explain",
    "demo",
    "django_prometheus",
    "axes",
]

MIDDLEWARE = [
    # Prometheus's pair wraps everything else, so every response is counted and timed.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.logs.RequestContextMiddleware",
    # Security headers (nosniff, referrer policy, HSTS, CSP, frame denial) go on every response,
    # probes and 413s included. SecurityMiddleware redirects nothing (the load balancer sends
    # http to https), so it never needs the Host header that probes may not carry.
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.PageCspMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Health checks and scrapes address tasks by IP: answered before the Host header is checked.
    "core.probes.ProbeMiddleware",
    "core.middleware.ApiBodyLimitMiddleware",
    "core.middleware.ApiWorkSlotMiddleware",
    # Sessions, users, messages and static files serve pages only: skipped for
    # a JSON request of /v1 (core/page_middleware.py; API_LEAN_PATH below).
    "core.page_middleware.PageWhiteNoiseMiddleware",
    "core.page_middleware.PageSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.page_middleware.PageAuthenticationMiddleware",
    "core.page_middleware.PageMessageMiddleware",
    # request.htmx (django-htmx): which requests come from htmx, on pages only.
    "core.page_middleware.PageHtmxMiddleware",
    # Turns a locked-out login (django-axes) into the lockout page; axes wants it last.
    "axes.middleware.AxesMiddleware",
    # django-prometheus's PrometheusAfterMiddleware, the same metrics for less work per request.
    "core.page_middleware.ViewMetricsMiddleware",
]
# On: the cuts of per-request work on /v1 above (and the metrics' cached children); off: the
# stock middleware, as before them, for bench/compare.py's A/B (docs/performance.md).
API_LEAN_PATH = env.bool("API_LEAN_PATH", default=True)
# On: gunicorn's application (config/wsgi.py) answers the common POST /v1/rank without Django's
# handler, middleware or DRF, with the same answer (ranking/direct.py); off: Django answers all.
API_DIRECT_PATH = env.bool("API_DIRECT_PATH", default=True)

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'rankwell.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DATABASE_CONNECT_TIMEOUT", default=3
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- signal store -----------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
SIGNAL_STORE = {
    # "redis" when REDIS_URL is set, otherwise the in-process store of the embedded default.
    "BACKEND": "redis" if REDIS_URL else "memory",
    "URL": REDIS_URL,
    # Every key starts with this; tests give each run its own namespace.
    "NAMESPACE": env.str("SIGNAL_STORE_NAMESPACE", default="rw"),
    # A rank request never waits longer than this on Redis before answering degraded. Generous
    # enough that a read slowed by a CPU spike still succeeds; a frozen Redis opens the breaker.
    "TIMEOUT_SECONDS": env.float("SIGNAL_STORE_TIMEOUT_SECONDS", default=0.2),
    # An event ingest never waits longer than this on Redis to update shopper profiles (behind
    # the same breaker); what Redis did not take is kept in PostgreSQL and replayed by the
    # `replay-pending-profile-updates` beat (events.tasks), so a frozen Redis costs an ingest at
    # most this, and nothing once the breaker is open. A batch's script takes milliseconds; at
    # 0.5 s, four ingests at once in a worker on a busy 2-core host took up to 1.3 s with Redis
    # frozen, at 0.25 s up to 0.8 s (the bound is 1 s).
    "PROFILE_WRITE_TIMEOUT_SECONDS": env.float(
        "SIGNAL_STORE_PROFILE_WRITE_TIMEOUT_SECONDS", default=0.25
    ),
    # The breaker opens when, over BREAKER_WINDOW_SECONDS, at least BREAKER_MIN_CALLS reads were
    # tried and at least BREAKER_FAILURE_RATE of them failed; then requests skip Redis for
    # BREAKER_SECONDS (one read then tries again) instead of each paying a timeout.
    "BREAKER_SECONDS": env.float("SIGNAL_STORE_BREAKER_SECONDS", default=1.0),
    "BREAKER_WINDOW_SECONDS": env.float("SIGNAL_STORE_BREAKER_WINDOW_SECONDS", default=1.0),
    "BREAKER_MIN_CALLS": env.int("SIGNAL_STORE_BREAKER_MIN_CALLS", default=10),
    "BREAKER_FAILURE_RATE": env.float("SIGNAL_STORE_BREAKER_FAILURE_RATE", default=0.5),
    # A replaced signal version stays readable this long for readers holding the old pointer.
    "VERSION_GRACE_SECONDS": env.int("SIGNAL_VERSION_GRACE_SECONDS", default=300),
    # REDIS_URL names one node of a Redis Cluster (e.g. ElastiCache in cluster mode).
    "CLUSTER": env.bool("REDIS_CLUSTER", default=False),
    # Item and query-item records of the current signal version are read from a memory-mapped
    # copy on this host, shared by its workers (ranking/signals/snapshot.py), instead of from
    # Redis on every request. The directory is private to the service's user (default:
    # rankwell-signals-<uid> in the temporary directory); None turns the copies off.
    "SNAPSHOT_DIR": (
        env.str(
            "SIGNAL_SNAPSHOT_DIR",
            default=str(VAR_DIR / "test-signal-snapshots") if RANKWELL_ENV == "test" else "",
        )
        if env.bool("SIGNAL_SNAPSHOTS", default=True)
        else None
    ),
}
# How often each process checks whether a customer's keys, configs or rules changed.
RUNTIME_REFRESH_SECONDS = env.float("RUNTIME_REFRESH_SECONDS", default=1.0)

# --- celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# One queue per workload, each with workers of its own (platform/compose.yaml, the Terraform ECS
# services, docs/operations.md): a training run of up to 55 minutes never holds up the rank log's
# one-second flushes or a signal refresh. Exact names win over the pattern.
CELERY_TASK_ROUTES = {
    "ranking.tasks.train_model": {"queue": "training"},
    "ranking.tasks.flush_rank_log": {"queue": "ranklog"},
    "ranking.tasks.flush_rank_log_split": {"queue": "ranklog"},
    "ranking.tasks.*": {"queue": "signals"},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task a killed worker had taken (acks_late) goes back to its queue after this long (Redis
# broker). Longer than the longest task (training: 55 minutes), or a running task would be
# handed to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=3600)
}
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
# Workers log through Django's LOGGING (JSON lines), not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
SIGNAL_REFRESH_INTERVAL_SECONDS = env.int("SIGNAL_REFRESH_INTERVAL_SECONDS", default=300)
# How often pending shopper-profile updates are replayed (events.tasks): after a Redis outage,
# profiles catch up within about this long.
PROFILE_REPLAY_INTERVAL_SECONDS = env.float("PROFILE_REPLAY_INTERVAL_SECONDS", default=5.0)
# PostgreSQL's work_mem for the refresh's (query, item) sums, set for that one statement: about
# 200 bytes per distinct pair in the long window; with less it spills to disk (slower, same sums).
SIGNAL_REFRESH_WORK_MEM = env.str("SIGNAL_REFRESH_WORK_MEM", default="1GB")
# How often running experiments are read and checked against the guardrail.
EXPERIMENT_CHECK_INTERVAL_SECONDS = env.int("EXPERIMENT_CHECK_INTERVAL_SECONDS", default=3600)
CELERY_BEAT_SCHEDULE = {
    "refresh-signals-for-active-customers": {
        "task": "ranking.tasks.schedule_signal_refresh",
        "schedule": SIGNAL_REFRESH_INTERVAL_SECONDS,
    },
    "refresh-new-customers": {
        "task": "ranking.tasks.schedule_first_refreshes",
        "schedule": env.int("FIRST_REFRESH_POLL_SECONDS", default=15),
    },
    "train-ranking-models-nightly": {
        "task": "ranking.tasks.schedule_model_training",
        "schedule": crontab(hour=2, minute=30),
    },
    # Every running experiment's readout, read again: kept for GET /v1/experiments and the
    # sample-ratio metric, and B stopped when it earns significantly less (docs/experiments.md).
    # On the signals queue, with the other periodic reads of ranking.tasks.
    "check-experiments": {
        "task": "ranking.tasks.schedule_experiment_checks",
        "schedule": EXPERIMENT_CHECK_INTERVAL_SECONDS,
        "options": {"expires": EXPERIMENT_CHECK_INTERVAL_SECONDS},
    },
    "purge-old-rank-log": {
        "task": "ranking.tasks.purge_rank_log",
        "schedule": crontab(hour=3, minute=15),
    },
    # Shopper-profile updates Redis did not take at ingest (down, frozen, breaker open), replayed
    # in order once it answers; cheap when there are none (one indexed query). A run not started
    # within its interval is dropped: the next one does the same work.
    "replay-pending-profile-updates": {
        "task": "events.tasks.replay_pending_profile_updates",
        "schedule": PROFILE_REPLAY_INTERVAL_SECONDS,
        "options": {"expires": PROFILE_REPLAY_INTERVAL_SECONDS},
    },
}

# --- learning to rank (docs/learning.md) ------------------------------------------------------
# LambdaMART models are compiled to native code on each serving host (ranking/learning/compiled.py):
# the C compiler to use (empty: always predict with LightGBM) and the private directory the
# compiled models are kept in (default: rankwell-models-<uid> in the temporary directory).
MODEL_COMPILER = env.str("MODEL_COMPILER", default="cc")
# The test suite keeps the models it compiles under var/, away from a host's own cache.
COMPILED_MODELS_DIR = env.str(
    "COMPILED_MODELS_DIR",
    default=str(VAR_DIR / "test-compiled-models") if RANKWELL_ENV == "test" else "",
)
# Rank-log entries a process buffers before dropping the oldest (about 10 KB each at 100 items).
RANK_LOG_BUFFER_SIZE = env.int("RANK_LOG_BUFFER_SIZE", default=10_000)
# Positions logged per request: training learns from what shoppers could see.
RANK_LOG_MAX_POSITIONS = env.int("RANK_LOG_MAX_POSITIONS", default=100)
RANK_LOG_FLUSH_BATCH = env.int("RANK_LOG_FLUSH_BATCH", default=500)
RANK_LOG_RETENTION_DAYS = env.int("RANK_LOG_RETENTION_DAYS", default=60)
# Nightly training: the window it reads, and the labelled requests a surface needs to be trained.
TRAINING_WINDOW_DAYS = env.int("TRAINING_WINDOW_DAYS", default=28)
TRAINING_MIN_REQUESTS = env.int("TRAINING_MIN_REQUESTS", default=500)
TRAINING_ALGORITHM = env.str("TRAINING_ALGORITHM", default="auto")
# A logged request whose signal version was older than this when it was served is rebuilt from
# the event log for training (three refresh intervals by default).
TRAINING_STALE_SIGNALS_SECONDS = env.int("TRAINING_STALE_SIGNALS_SECONDS", default=900)
# A model judged on fewer later requests with outcomes than this cannot be told apart from the
# live ranker: activating it needs an override (docs/learning.md).
TRAINING_MIN_HOLDOUT_REQUESTS = env.int("TRAINING_MIN_HOLDOUT_REQUESTS", default=200)

# --- API --------------------------------------------------------------------------------------
# Bodies larger than this get 413 before they are read.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=8 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# /v1 requests a process works on at once, once their bodies are in (core/middleware.py). The
# rest wait for a slot, their bodies read: a process has many threads so that slow clients cannot
# hold it (platform/gunicorn.conf.py), but under the GIL more requests in work at once only add
# memory (measured: 16 at once took a worker from 170 MB to 249 MB peak), not throughput.
API_CONCURRENT_REQUESTS = env.int("API_CONCURRENT_REQUESTS", default=4)
# A request that waited this long for a slot is answered 503 with Retry-After.
API_SLOT_WAIT_SECONDS = env.float("API_SLOT_WAIT_SECONDS", default=10.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["customers.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["customers.auth.HasScope"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "core.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Each API key's requests per second per endpoint group, set per customer (Customer's
    # *_requests_per_second and *_burst); customers/ratelimit.py, docs/operations.md.
    "DEFAULT_THROTTLE_CLASSES": ["customers.auth.ApiKeyRateThrottle"],
}

# Rate limits (customers/ratelimit.py): token buckets in the signal store's Redis, under its
# namespace; in process on the embedded default.
RATE_LIMIT = {
    # Off: no request is limited (an escape hatch for an incident; refusals are still counted).
    "ENABLED": env.bool("RATE_LIMIT_ENABLED", default=True),
    # A decision never waits on Redis longer than this: a slower or absent Redis allows the
    # request (counted as failed_open). One round trip on loopback takes about 0.07 ms.
    "TIMEOUT_SECONDS": env.float("RATE_LIMIT_TIMEOUT_SECONDS", default=0.05),
    # After Redis failed, a process allows without asking it for this long: a frozen Redis costs
    # one timeout per process per interval instead of one per request.
    "RETRY_SECONDS": env.float("RATE_LIMIT_RETRY_SECONDS", default=1.0),
    # Unknown or revoked API keys one client address may send: this many at once, refilled over a
    # minute. Beyond that the address gets 429 without its keys being looked up; keys this
    # process already verified keep working from it.
    "INVALID_KEYS_PER_MINUTE": env.int("RATE_LIMIT_INVALID_KEYS_PER_MINUTE", default=20),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Rankwell API",
    "DESCRIPTION": (
        "Re-ranking, events and catalog API. Errors are RFC 9457 problem+json.\n\n"
        "Rules JSON Schema cannot state (each refused with 400 naming the field, unless noted):\n"
        "- ids are compared after trimming whitespace: a request lists each id once "
        "(rank candidates, impression items, catalog items);\n"
        "- rank: search and autocomplete need a query; at most the customer's max_candidates "
        "candidates (1000 unless agreed);\n"
        "- events: a timestamp at most an hour ahead of the server's clock, and in year 1 or "
        "later once in UTC;\n"
        "- category paths are segments joined by '/', none empty;\n"
        "- rules: query match 'any' takes no patterns, the others at least one, each with a "
        "letter or digit; a window ends after it starts; a pin rule has an empty selector; two "
        "pins of one rule on one position or item answer 409; a diversity cap at or above its "
        "window, or a price range that is empty, is saved with a warning."
    ),
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.state_text_rules",
    ],
    # The security scheme comes from customers.schema (the API key authentication's extension).
    "ENUM_NAME_OVERRIDES": {"SurfaceEnum": ["search", "browse", "autocomplete"]},
}

# --- auth, i18n, static -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# django-axes refuses a login it has locked out before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# The project's own scripts (templates carry no inline script: see the CSP below).
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    # Model artifacts live here: the filesystem under MEDIA_ROOT by default; S3 with
    # STORAGE_BACKEND=storages.backends.s3.S3Storage and STORAGE_OPTIONS={"bucket_name": ...}.
    "default": {
        "BACKEND": env.str(
            "STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": env.json("STORAGE_OPTIONS", default={}),
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # One year, subdomains too. No preload: the preload list is hard to leave and commits every
    # subdomain of the registered domain, which this service does not own.
    SECURE_HSTS_SECONDS = 365 * 24 * 60 * 60
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = False

# --- security headers and login throttling (every environment, so tests see production's) ------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
X_FRAME_OPTIONS = "DENY"
# No inline script anywhere: the project's scripts are static files (htmx and SortableJS
# vendored in static/vendor/, served by the app like the rest), and the one third-party
# inline script (Swagger UI's initialiser, templates/drf_spectacular/) carries the request's
# nonce. Inline styles stay allowed: Django's admin and Swagger UI write them, and a style
# cannot run code. Images may come from any https address: the workbench shows each item's
# `image_url` from the shop's own image host (an image cannot run code either).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "https:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Admin logins (django-axes, counted in the database, so every process and the embedded SQLite
# default share the counts): after AXES_FAILURE_LIMIT failures for one username from one client
# address, that pair is refused for AXES_COOLOFF_TIME (each further try restarts the wait).
# Keyed by username AND address: by username alone anyone could lock any staff member out from
# everywhere; by address alone one office behind a NAT would lock itself out. An attacker gets
# 10 guesses per username per address per 15 minutes.
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
# Proxies in front of the app that append to X-Forwarded-For (production: the ALB).
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=1 if PRODUCTION else 0)


def axes_client_ip(request: "HttpRequest") -> str:
    """The address that reached our outermost trusted proxy: X-Forwarded-For's entry that many
    hops from the right (entries left of it are the client's to forge), else REMOTE_ADDR."""
    from django.conf import settings

    hops = settings.TRUSTED_PROXY_HOPS
    forwarded = [
        part.strip()
        for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if part.strip()
    ]
    if hops and len(forwarded) >= hops:
        return forwarded[-hops]
    return str(request.META.get("REMOTE_ADDR", ""))


AXES_CLIENT_IP_CALLABLE = axes_client_ip

# --- observability (docs/operations.md) -------------------------------------------------------
# Logs: JSON lines with the request id and customer (core/logs.py); LOG_FORMAT=text for
# readable lines, the default in development.
LOGGING = logging_config(
    level=env.str("LOG_LEVEL", default="INFO"),
    json_lines=env.str("LOG_FORMAT", default="text" if RANKWELL_ENV == "development" else "json")
    == "json",
)
# Request latency buckets of django-prometheus: fine below 50 ms, where /v1/rank answers.
PROMETHEUS_LATENCY_BUCKETS = (
    0.002,
    0.005,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    float("inf"),
)
# Errors go to Sentry when SENTRY_DSN is set, scrubbed of keys and shopper ids (core/sentry.py).
SENTRY_DSN = env.str("SENTRY_DSN", default="")
RANKWELL_RELEASE = env.str("RANKWELL_RELEASE", default="") or None
if SENTRY_DSN:
    init_sentry(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default=RANKWELL_ENV),
        release=RANKWELL_RELEASE,
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )
