# syntax=docker/dockerfile:1
# ResQ's production image (docs/deploy.md). Two targets:
#   runtime    the app under gunicorn (compose services web and migrate)
#   scheduler  the same image plus supercronic and the PostgreSQL client, for the
#              daily report, the retention job and the nightly backup
# Build context hygiene lives in .dockerignore: no .env, no local database, no .git.

ARG PYTHON_IMAGE=python:3.13-slim-trixie

# --- builder: the locked dependencies in a virtualenv, and the collected static files
FROM ${PYTHON_IMAGE} AS builder

# Pinned uv, the same release the project's lock file was written with.
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv

WORKDIR /app

# Dependencies first, from the lock alone, so that a code change reuses this layer.
# --frozen: install exactly what uv.lock says, and fail rather than re-resolve.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=.python-version,target=.python-version \
    uv sync --frozen --no-dev --no-install-project

COPY . /app

# Static files are collected (hashed and compressed) once, here, not at start-up.
# Settings need a key when DEBUG is off (long enough for Django's rule, or they refuse
# to load); this throwaway one exists only in this step, never in the image's
# environment, and no database is touched.
RUN DEBUG=off SECRET_KEY=build-only-not-secret-used-once-to-collect-static-files STATIC_MANIFEST=on \
    /opt/venv/bin/python manage.py collectstatic --noinput --verbosity 1


# --- runtime: the slim interpreter image, the virtualenv and the app, run as non-root
FROM ${PYTHON_IMAGE} AS runtime

# tzdata: Django's zoneinfo needs the system zone database for TIME_ZONE, and the
# scheduler to run jobs on the service's clock. Installed here so that the image does
# not rely on the base image happening to carry it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid, so that volume ownership is the same on every host.
RUN groupadd --system --gid 10001 resq \
    && useradd --system --uid 10001 --gid resq --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin resq

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DEBUG=off

COPY --from=builder /opt/venv /opt/venv
# Owned by root and read-only to the app's user: the running app writes nothing here.
COPY --from=builder /app /app

WORKDIR /app
USER resq
EXPOSE 8000

# /healthz answers 200 when the database answers, 503 when it does not. The request
# names the host the app serves and says it came over HTTPS, as the proxy's do, so
# neither ALLOWED_HOSTS nor the HTTPS redirect turns it away. Slim images have no
# curl; urlopen raises (exit 1) on a refused connection or any 4xx/5xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; host = os.environ.get('ALLOWED_HOSTS', 'localhost').split(',')[0].strip().lstrip('.'); u.urlopen(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': host, 'X-Forwarded-Proto': 'https'}), timeout=4)"]

# Migrations are not run here: compose's one-shot `migrate` service runs them once per
# deployment, never on every container start.
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py"]


# --- scheduler: runtime plus a cron made for containers and the PostgreSQL client
FROM runtime AS scheduler

USER root

# pg_dump must be at least as new as the server: postgresql-client-17 matches compose's
# postgres:17 (Debian trixie ships 17).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-17 \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o resq -g resq -m 0750 /backups

# supercronic runs crontab lines in the foreground as this user, keeps the container's
# environment for each job, logs every run and exit status to stdout, and finishes
# running jobs on SIGTERM. The release binary is checked against its published SHA-1.
ARG TARGETARCH
ARG SUPERCRONIC_VERSION=v0.2.34
ARG SUPERCRONIC_SHA1_AMD64=e8631edc1775000d119b70fd40339a7238eece14
ADD https://github.com/aptible/supercronic/releases/download/${SUPERCRONIC_VERSION}/supercronic-linux-${TARGETARCH} /usr/local/bin/supercronic
RUN case "${TARGETARCH}" in \
        amd64) echo "${SUPERCRONIC_SHA1_AMD64}  /usr/local/bin/supercronic" | sha1sum -c - ;; \
        *) echo "add supercronic's SHA-1 for ${TARGETARCH} to the Dockerfile" >&2; exit 1 ;; \
    esac \
    && chmod 0755 /usr/local/bin/supercronic \
    && supercronic -test /app/deploy/scheduler/crontab

USER resq

# The scheduler serves no HTTP; compose watches it by its exit instead.
HEALTHCHECK NONE
CMD ["supercronic", "/app/deploy/scheduler/crontab"]
