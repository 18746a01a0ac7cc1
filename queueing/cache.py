"""The board cache (`caches["board"]`): rendered boards, rows, the add form and what
the wait estimates draw from."""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


def cache_call(method: Callable, *args, **kwargs):
    """The board cache is a saving, never a dependency: with a shared cache (Redis)
    that stops answering, the board is rendered afresh instead of the request failing
    (an action is already saved by the time its board is rendered)."""
    try:
        return method(*args, **kwargs)
    except Exception:
        logger.warning("Board cache unavailable; rendering the board without it", exc_info=True)
        return None
