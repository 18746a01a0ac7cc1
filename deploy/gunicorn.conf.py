"""gunicorn's settings for ResQ in production, read from the environment.

The image runs `gunicorn --config deploy/gunicorn.conf.py`. Each knob has a default that
suits the 2-core machines the benchmarks ran on (README, "Performance"); `.env.example`
documents them. Command-line options still win over this file, so a test can bind
another port.
"""

import os
from pathlib import Path


def _int_from_env(name: str, default: int, *, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


wsgi_app = "resq.wsgi:application"
proc_name = "resq"

# The proxy reaches the app over the compose network; nothing publishes this port.
bind = ["0.0.0.0:8000"]

# Sync workers: the design measured WSGI under sync workers 3–6× faster than ASGI for
# these views. Two carried 500 screens polling every 2 s at p99 16 ms; the third keeps
# the desk answering while a long report holds a worker.
workers = _int_from_env("GUNICORN_WORKERS", 3, minimum=1)
# More than one thread switches gunicorn to its threaded worker; each thread holds its
# own database connection, so workers × threads must stay under PostgreSQL's limit.
threads = _int_from_env("GUNICORN_THREADS", 1, minimum=1)
# A sync worker cannot tell the arbiter it is alive while it streams a response, so
# the longest export must finish within this many seconds.
timeout = _int_from_env("GUNICORN_TIMEOUT", 60, minimum=1)
graceful_timeout = _int_from_env("GUNICORN_GRACEFUL_TIMEOUT", 30, minimum=1)
# Restart each worker after this many requests (0: never), so a slow leak cannot grow
# without bound; the jitter keeps the workers from restarting together.
max_requests = _int_from_env("GUNICORN_MAX_REQUESTS", 1000, minimum=0)
max_requests_jitter = max_requests // 10

# The heartbeat file is touched constantly; on a disk-backed /tmp that can stall a
# worker, so use memory where the container has it.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108

# Nothing here uses gunicorn's runtime control socket; without it no file is written
# in the (read-only) home directory.
control_socket_disable = True

# Errors go to stderr, where the container runtime collects them.
errorlog = "-"
loglevel = "info"
# No access log unless GUNICORN_ACCESS_LOG is on. When it is, each line names the path
# without its query string (an admin search for a student number travels in one) and
# without the referrer, which can carry such a query too.
_access_log_on = os.environ.get("GUNICORN_ACCESS_LOG", "").strip().lower()
accesslog = "-" if _access_log_on in {"1", "on", "true", "yes"} else None
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
