"""Send the library's standard ``logging`` records to the Prefect run logs."""

from __future__ import annotations

import logging

LIBRARY_LOGGER = "skysort"


def route_library_logs() -> None:
    """Give the ``skysort`` logger the handlers Prefect gives its own extra loggers.

    Equivalent to ``PREFECT_LOGGING_EXTRA_LOGGERS=skysort``, without needing the
    variable set before Prefect is imported. Idempotent.
    """
    logger = logging.getLogger(LIBRARY_LOGGER)
    logger.setLevel(logging.INFO)
    for handler in logging.getLogger("prefect.extra").handlers:
        if handler not in logger.handlers:
            logger.addHandler(handler)
