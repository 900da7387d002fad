"""URLs as skysort shows and checks them: credentials redacted, loopback hosts recognised.

``redact_url`` is for every place a URL is printed, logged or stored (provenance,
manifests, artifacts, error messages): a password in ``https://user:pw@host`` must
never reach a file, a log line or the Prefect UI.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from skysort.config.sources import is_loopback_host  # noqa: F401  (the one check, re-exported)

REDACTED = "***"

# scheme://userinfo@ anywhere in a text (a URL inside an error message, say)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]*)@")


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``; other URLs unchanged."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it redacted (for messages and logs)."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
