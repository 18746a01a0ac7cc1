"""Settings for the desk benchmark: the product's own settings, plus a URLconf with
bare views that measure the framework's floor. Everything else (DEBUG, database, keys)
comes from the environment, exactly as in production; `desk_bench.py` sets it."""

import os

from resq.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# Collected static files go to a temporary directory the benchmark creates and removes,
# so the run serves the hashed manifest as production does without touching the tree.
STATIC_ROOT = os.environ.get("BENCH_STATIC_ROOT", STATIC_ROOT)  # noqa: F405
