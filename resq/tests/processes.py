"""A fresh Django process for tests of settings read from the environment, started as a
container would start one: this process's environment, less the keys under test."""

import os
import subprocess
import sys

from django.conf import settings


def django_process(
    code: str, *, unset: tuple[str, ...] = (), empty: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess:
    """Runs `code` after django.setup() in a new interpreter. Keys in `unset` are
    removed from the environment, keys in `empty` set to "" (as `KEY=` in .env), and
    `env` is set on top."""
    environment = {key: value for key, value in os.environ.items() if key not in unset}
    environment |= dict.fromkeys(empty, "")
    environment |= {"DJANGO_SETTINGS_MODULE": "resq.settings", "PYTHONIOENCODING": "utf-8"}
    environment |= env
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", f"import django\ndjango.setup()\n{code}"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
