"""The SQL search's exceptions: SkyServer's refusal, and its absence (worth a retry)."""

from __future__ import annotations

from skysort.pipeline.transient import TransientError


class SkyServerError(RuntimeError):
    """SkyServer could not answer the query; the message says why and which setting to change."""


class SkyServerUnavailable(SkyServerError, TransientError):
    """SkyServer did not answer (network, timeout, 429 or 5xx): trying again later may work."""
