"""ResQ settings: one module, configured entirely from the environment (12-factor).

Every key is documented in `.env.example`. Development needs nothing set: it runs on a
SQLite file with DEBUG on. Production (DEBUG off) refuses to start without SECRET_KEY.
"""

from pathlib import Path

import environ
import plotly

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)


def _given(key: str) -> bool:
    """Whether KEY has a value: `KEY=` (as .env.example lists it) means "the default"."""
    return env.str(key, default="") != ""


if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="") or (
        "dev-only-insecure-key-never-used-in-production-0123456789"
    )
else:
    # No default: a production server without its own key must not start. An empty or
    # weak one must not either: it starts, then answers every request with a 500 (empty)
    # or signs sessions and password reset links with a guessable key. The rule is
    # Django's own (check --deploy's security.W009), enforced here rather than warned.
    from django.core.checks.security.base import (
        SECRET_KEY_INSECURE_PREFIX,
        SECRET_KEY_MIN_LENGTH,
        SECRET_KEY_MIN_UNIQUE_CHARACTERS,
    )
    from django.core.exceptions import ImproperlyConfigured

    SECRET_KEY = env.str("SECRET_KEY")
    if (
        len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
        or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX)
    ):
        raise ImproperlyConfigured(
            f"SECRET_KEY is {'empty' if not SECRET_KEY else 'too weak'}: with DEBUG off it "
            f"must be at least {SECRET_KEY_MIN_LENGTH} characters long, with at least "
            f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones, and not start with "
            f"{SECRET_KEY_INSECURE_PREFIX!r}. Make one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(50))"` and set it '
            "in the environment (or .env)."
        )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "import_export",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "axes",
    "accounts",
    "queueing",
    "reporting",
]

MIDDLEWARE = [
    "resq.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "resq.headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.SessionTimeoutMiddleware",
    "accounts.middleware.LoginRequiredMiddleware",
    "accounts.middleware.AdminTwoFactorMiddleware",
    "resq.middleware.AdminEmptyToFieldMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "resq.urls"
WSGI_APPLICATION = "resq.wsgi.application"

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
                "django.template.context_processors.csp",
            ],
        },
    },
]

# Database: a SQLite file by default; PostgreSQL (psycopg 3) through DATABASE_URL.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several screens write at once: WAL lets readers run beside the writer, and
    # IMMEDIATE transactions take the write lock up front instead of failing with
    # "database is locked" when a read transaction tries to upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 5,
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Report queries group a term's visits by weekday, hour and wait; PostgreSQL's 4 MB
    # default spills those sorts to disk (measured: 223 ms → about 110 ms at 16 MB).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c work_mem={env.str('PG_WORK_MEM', default='16MB')}"
    )
    # Every desk request runs the same few statements (session, user, permissions,
    # version, the board's reads, an add's writes): bound on the server, each is
    # prepared once a connection has run it five times, so PostgreSQL stops planning it
    # again (measured in process: a changed poll 3.4 → 2.7 ms, a plain add 10 → 8.7).
    # PG_PREPARED_STATEMENTS=off for a transaction-pooling proxy older than
    # PgBouncer 1.21, which cannot keep them.
    if env.bool("PG_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"] |= {"server_side_binding": True, "prepare_threshold": 5}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
# The throttle first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.ThrottledLoginBackend",
    "accounts.backends.ModelBackend",
]
# Argon2 first; the others only so that older hashes still verify and are upgraded.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Sessions live in the database so a manager can end them; never save on every
# request, or every two-second board poll becomes a write.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_SAVE_EVERY_REQUEST = False
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 10)

LANGUAGE_CODE = "en-au"
TIME_ZONE = env.str("TIME_ZONE", default="Australia/Perth")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# plotly.js is served from the plotly package itself: one version, no copy, no CDN.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("plotly", Path(plotly.__file__).parent / "package_data"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if (env.bool("STATIC_MANIFEST") if _given("STATIC_MANIFEST") else not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        ),
    },
}

# Strict CSP: scripts and styles only from our own static files; no inline code.
from django.utils.csp import CSP  # noqa: E402

SECURE_CSP = {
    # Nothing that is not listed below: no frames, workers, media or manifests.
    "default-src": [CSP.NONE],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Stricter than strict-origin-when-cross-origin: other sites never learn which ResQ page
# a link was followed from.
SECURE_REFERRER_POLICY = "same-origin"
# A page another site opens (or that opens one) shares no window with it.
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Cross-Origin-Resource-Policy, Permissions-Policy and Cache-Control: no-store come from
# resq.headers.SecurityHeadersMiddleware; docs/security.md lists every header.

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT") if _given("SECURE_SSL_REDIRECT") else True
    SECURE_HSTS_SECONDS = (
        env.int("SECURE_HSTS_SECONDS") if _given("SECURE_HSTS_SECONDS") else 60 * 60 * 24 * 365
    )
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Logs: one JSON object per line in production (for whatever collects the containers'
# output), plain text in development. resq.middleware.RequestLogMiddleware logs each
# request once (request id, user id, method, route, status, view, duration); the request
# id is on every other record logged during the request too. Never student data: no
# names, student numbers, query strings or request bodies.
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

LOG_FORMAT = env.str("LOG_FORMAT", default="") or ("text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
# Every open board polls every two seconds: 500 screens make 250 requests a second, 1.8
# million lines in a two-hour drop-in against a few thousand for everything else, and
# each change sends every screen to fetch the board, so changed polls flood as much as
# unchanged ones. Polls and health checks are logged at DEBUG unless they fail or are
# slow; LOG_POLLS=on logs them at INFO like any other request.
RESQ_LOG_POLLS = env.bool("LOG_POLLS", default=False)
RESQ_LOG_QUIET_VIEWS = frozenset({"queueing:poll", "healthz"})
# Any request slower than this many milliseconds is logged at WARNING, polls included
# (0: never). The desk's poll answers in about 16 ms at p99 under 500 screens.
RESQ_LOG_SLOW_MS = env.int("LOG_SLOW_MS") if env.str("LOG_SLOW_MS", default="") else 1000
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "resq.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "resq.logging.JsonFormatter",
            "fmt": ["levelname", "name", "message"],
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        },
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
            "defaults": {"request_id": "-"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own handlers go: its console handler printed every django.* record a
        # second time in development, and its error mails to ADMINS carry the request's
        # query string, POST data and stack-frame locals. Errors reach the log (and
        # Sentry, when set) through the root handler.
        "django": {"handlers": [], "level": "INFO"},
        # runserver's request lines carry the query string (even at WARNING, for a
        # 404), so none are logged: ResQ's own request line replaces them.
        "django.server": {"level": "CRITICAL"},
        # SQL at DEBUG carries its parameters: student names and numbers.
        "django.db.backends": {"level": "INFO"},
    },
}

# Error reports (Sentry), only when SENTRY_DSN is set: unset, the SDK is never started.
# No personal data leaves: no request bodies, cookies or query strings, no stack-frame
# locals (a desk view's locals hold a student's name and number), users by numeric id
# only. resq.sentry.scrub_event has the last word on every event.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    from resq.sentry import scrub_event

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration()],
        environment=env.str("SENTRY_ENVIRONMENT", default="") or "production",
        release=env.str("SENTRY_RELEASE", default="") or None,
        traces_sample_rate=(
            env.float("SENTRY_TRACES_SAMPLE_RATE")
            if env.str("SENTRY_TRACES_SAMPLE_RATE", default="")
            else 0.0
        ),
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        before_send=scrub_event,
        before_send_transaction=scrub_event,
    )

# Caches. "default" holds what every worker must see the same: allauth's login rate
# limits, the two-factor codes already used (so a code works once) and sessions with
# cached_db. Per-process memory would give each gunicorn worker its own counters and its
# own record of used codes, so it is a database table without REDIS_URL (created by
# accounts' migrations) and Redis with it (docs/scaling.md). "board" holds the desk's
# board, rendered once per version (`resq:board:<version>`): a board never changes under
# its version, so without Redis each process keeps its own copy in memory, with Redis
# one copy serves every container.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    _redis_cache = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Lets two deployments (staging beside production) share one Redis.
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="") or "resq",
        # Django's default for entries without their own timeout; the board sets ten
        # minutes, sessions their own expiry.
        "TIMEOUT": 300,
        # A Redis that stops answering fails a request in a second instead of holding a
        # worker until the proxy gives up.
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    CACHES = {"default": _redis_cache, "board": _redis_cache}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "resq_cache",
            # Past this many entries Django deletes the expired ones, then a third of
            # the rest whatever their age: used codes and counters among them. Rate
            # limits keep one entry per address, so this is far above what a desk sees.
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        },
        # The board of each version and its rows, one entry a row: Django's default of
        # 300 entries would evict a 400-row board's own rows while it is assembled.
        "board": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "board",
            "OPTIONS": {"MAX_ENTRIES": 5000},
        },
    }
# Sessions stay in the database, the source of truth, so a manager can end them and
# deactivating a user ends theirs. "cached_db" also keeps a copy in the cache, which
# saves the session query on every request (every two-second poll); it needs the shared
# cache, or a sign-out in one process would leave the session alive in the others.
_session_engines = {
    "db": "django.contrib.sessions.backends.db",
    "cached_db": "django.contrib.sessions.backends.cached_db",
}
_session_engine = (env.str("SESSION_ENGINE", default="") or "db").removeprefix(
    "django.contrib.sessions.backends."
)
if _session_engine not in _session_engines:
    raise ImproperlyConfigured(
        "SESSION_ENGINE must be db or cached_db (sessions stay in the database so that "
        f"they can be ended), not {_session_engine!r}."
    )
if _session_engine == "cached_db" and not REDIS_URL:
    raise ImproperlyConfigured("SESSION_ENGINE=cached_db needs REDIS_URL (a shared cache).")
SESSION_ENGINE = _session_engines[_session_engine]

# The desk.
RESQ_UNDO_WINDOW_SECONDS = env.int("RESQ_UNDO_WINDOW_SECONDS", default=5 * 60)
RESQ_STUDENT_NUMBER_PATTERN = env.str("RESQ_STUDENT_NUMBER_PATTERN", default=r"^\d{8}$")
RESQ_STUDENT_NUMBER_HELP = env.str("RESQ_STUDENT_NUMBER_HELP", default="8 digits, e.g. 21234567")
RESQ_POLL_SECONDS = env.float("RESQ_POLL_SECONDS", default=2.0)
# The students' side (docs/user-guide.md, "Students"): the room code on the display
# changes this often; a check-in goes straight into its team's queue when this is on
# (else the desk accepts it); and the email a student's notices go to is made from their
# number by this pattern, e.g. {number}@student.example.edu (blank: they type one).
RESQ_ROOM_CODE_SECONDS = env.int("RESQ_ROOM_CODE_SECONDS", default=5 * 60)
RESQ_CHECKIN_AUTO_ACCEPT = env.bool("RESQ_CHECKIN_AUTO_ACCEPT", default=False)
RESQ_STUDENT_EMAIL_PATTERN = env.str("RESQ_STUDENT_EMAIL_PATTERN", default="")
# Admin imports: the largest file accepted, in bytes (a year of visits is about 3 MB).
RESQ_IMPORT_MAX_BYTES = env.int("RESQ_IMPORT_MAX_BYTES", default=5 * 1024 * 1024)

# Mail.
# Django 6.1's MAILERS, from the environment: SMTP when SMTP_HOST is set. Without it,
# development prints mail to the console; production falls back to a relay on this
# host (the usual local MTA), so a missing relay fails loudly rather than silently.
# An empty value (KEY= in .env) counts as unset.
_smtp_host = env.str("SMTP_HOST", default="") or ("" if DEBUG else "localhost")
if _smtp_host:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _smtp_host,
                # Unset: 587 with STARTTLS, 465 with SSL, else 25.
                "port": env.int("SMTP_PORT") if env.str("SMTP_PORT", default="") else None,
                "username": env.str("SMTP_USER", default=""),
                "password": env.str("SMTP_PASSWORD", default=""),
                "use_tls": env.bool("SMTP_USE_TLS", default=False),
                "use_ssl": env.bool("SMTP_USE_SSL", default=False),
                # A scheduled job must not hang on a mail server that stopped answering.
                "timeout": (
                    env.float("SMTP_TIMEOUT") if env.str("SMTP_TIMEOUT", default="") else 30.0
                ),
            },
        },
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="") or "ResQ <resq@localhost>"
SERVER_EMAIL = env.str("SERVER_EMAIL", default="") or DEFAULT_FROM_EMAIL

# The daily usage email: who gets it, and where its links point.
RESQ_DAILY_REPORT_RECIPIENTS = env.list("RESQ_DAILY_REPORT_RECIPIENTS", default=[])
# Never guessed: a development server reached from another machine is not at 127.0.0.1.
RESQ_SITE_URL = env.str("RESQ_SITE_URL", default="")

# Admin import/export (managers only).
# Importing and exporting in admin are bulk corrections: both need the model's change
# permission, which of the roles only Manager holds (a coordinator reads visits, and
# may be staff, but gets neither button nor URL).
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "change"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "change"
# One transaction per import: a file with any failing row writes nothing.
IMPORT_EXPORT_USE_TRANSACTIONS = True
# An uploaded file waits for its confirmation in the system's temporary directory,
# which the workers of one machine share (more machines need shared storage).
IMPORT_EXPORT_TMP_STORAGE_CLASS = "import_export.tmp_storages.TempFolderStorage"
# Exports read visits in chunks rather than all at once. (Cells a spreadsheet would run
# as formulas are escaped by queueing.resources, reversibly; the library's own setting
# drops the "=" and rewrites the whole file row by row.)
IMPORT_EXPORT_CHUNK_SIZE = 2000

# Sign-in: allauth, MFA, axes.


def _env_int(name: str, default: int) -> int:
    """An integer from the environment; empty (KEY= in .env) counts as unset."""
    return env.int(name) if env.str(name, default="") else default


# One login page for everyone (allauth's, in ResQ's look; accounts/allauth_urls.py lists
# the pages served). Accounts are made by managers: no signup, no email confirmation,
# no self-service email addresses; a password reset goes to the address in admin.
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_ENABLED = False
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_FORMS = {"login": "accounts.forms.LoginForm"}
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[ResQ] "
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_REAUTHENTICATION_METHODS = ("password", "mfa")
# A login waiting for its code is dropped after five minutes (or by Cancel), so the
# next person at a shared computer is not met by someone else's code prompt.
ACCOUNT_LOGIN_TIMEOUT = 5 * 60
# No "remember me" on a shared computer: the session cookie ends with the browser.
ACCOUNT_SESSION_REMEMBER = False
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# allauth's own counters, beside axes' lockout of a (username, address) pair (below).
# Wrong passwords count only per address, to slow one address trying many usernames:
# counted per username, an attacker anywhere could lock a user out at every address
# (accounts.throttling.AccountAdapter). Wrong codes at the two-factor step, which only
# someone with the password reaches, count per address and per user. Looser than axes,
# so that axes' lockout page is what a person normally meets.
ACCOUNT_ADAPTER = "accounts.throttling.AccountAdapter"
ACCOUNT_RATE_LIMITS = {
    "login_failed_password": "30/m/ip",
    "login_failed": "30/m/ip,20/15m/key",
}
# Proxies in front of ResQ that set X-Forwarded-For (compose: Caddy, so 1 in
# production); throttling counts failures by the address it gives.
ALLAUTH_TRUSTED_PROXY_COUNT = _env_int("TRUSTED_PROXY_COUNT", 0 if DEBUG else 1)

# Two-factor authentication: an authenticator app (TOTP) and recovery codes. Admin
# requires it (accounts.middleware.AdminTwoFactorMiddleware); the desk does not.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "ResQ"
# allauth refuses two-factor to accounts with an unconfirmed address, against people
# squatting someone else's address at signup. There is no signup here.
MFA_ALLOW_UNVERIFIED_EMAIL = True
# "Where you are logged in" comes from allauth's map of sessions, written at login.
# Tracking activity would write it on every request: every board poll.
USERSESSIONS_TRACK_ACTIVITY = False

# Sessions. SESSION_COOKIE_AGE (above) is how long a login lasts at most; idle is how
# long one lasts without a request of the user's own. Board polls are not activity
# (accounts.middleware.SessionTimeoutMiddleware). 0 turns either off.
RESQ_SESSION_IDLE_TIMEOUT = _env_int("SESSION_IDLE_TIMEOUT", 30 * 60)
RESQ_SESSION_PASSIVE_VIEWS = frozenset({"queueing:poll"})
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# No script reads the CSRF cookie: htmx sends the token from the page (base.html).
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
# A refused form gets the product's page (Django's own styles itself inline: CSP).
CSRF_FAILURE_VIEW = "resq.views.csrf_failure"

# Login throttling (django-axes): LOGIN_FAILURE_LIMIT wrong passwords for one username
# from one address lock that pair out for LOGIN_COOLOFF_MINUTES after the last of them.
# Attempts while locked out are refused without counting, so the time on the lockout
# page holds. Managers unlock in Admin (Access attempts); or
# `manage.py axes_reset_username NAME`. A password reset by email unlocks too.
from datetime import timedelta  # noqa: E402

AXES_FAILURE_LIMIT = _env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=_env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.throttling.lockout_response"
AXES_CLIENT_IP_CALLABLE = "accounts.throttling.client_ip"
AXES_HTTP_RESPONSE_CODE = 429
# Log lines name the address, not the username: people type passwords into the
# username box. The attempt itself (username included) is in admin. Passwords never.
AXES_SENSITIVE_PARAMETERS = ["username"]
# axes logs failures and lockouts at WARNING. Below that it announces itself at every
# start (management commands included) and narrates every login: AccessLog in admin
# already records those.
LOGGING["loggers"]["axes"] = {"level": "WARNING"}

# Privacy: visits older than this many days lose their student's name and number
# (manage.py anonymise_old_visits, run nightly by the scheduler; docs/security.md).
RESQ_RETENTION_DAYS = env.int("RESQ_RETENTION_DAYS", default=730)
