"""Sending SQL to SkyServer through astroquery: the only step of the search on the network."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import requests

from skysort.config import SkyServerSource
from skysort.sources.skyserver.sql_errors import SkyServerError, SkyServerUnavailable
from skysort.sources.urls import redact_text as redact

# astroquery reads the base URL from a module-level config item; it is set only for
# the duration of one request and restored, and the lock keeps two threads of this
# process from seeing each other's value.
_BASE_URL_LOCK = threading.Lock()


@contextlib.contextmanager
def _skyserver_base_url(base_url: str) -> Iterator[None]:
    """Point astroquery's SDSS module at ``base_url`` for the duration of the block."""
    from astroquery.sdss import conf

    with _BASE_URL_LOCK, conf.set_temp("skyserver_baseurl", base_url.rstrip("/")):
        yield


def send_sql(sql: str, skyserver: SkyServerSource) -> requests.Response:
    """Run ``sql`` through astroquery (no cache) and return the raw HTTP response.

    Network failures become :class:`SkyServerError` naming the setting to change.
    """
    from astroquery.sdss import SDSSClass

    client = SDSSClass()
    where = redact(skyserver.base_url)
    try:
        with _skyserver_base_url(skyserver.base_url):
            return client.query_sql_async(
                sql,
                timeout=skyserver.timeout_s,
                data_release=skyserver.data_release,
                cache=False,
            )
    except requests.Timeout as exc:
        raise SkyServerUnavailable(
            f"SkyServer at {where} did not answer within {skyserver.timeout_s} s "
            f"({type(exc).__name__}); raise source.skyserver.timeout_s or lower "
            "source.skyserver.max_rows_per_request / query.n_objects"
        ) from exc
    except requests.ConnectionError as exc:
        raise SkyServerUnavailable(
            f"cannot reach SkyServer at {where} ({redact(str(exc))}); check the network or "
            "set source.skyserver.base_url (or use source.kind: synthetic offline)"
        ) from exc
    except requests.RequestException as exc:
        raise SkyServerError(f"request to SkyServer at {where} failed: {redact(str(exc))}") from exc
