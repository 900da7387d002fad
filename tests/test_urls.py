"""Credentials in a URL never reach provenance, logs or artifacts; loopback hosts are known."""

from __future__ import annotations

import datetime as dt

import pytest

from skysort.config import SkyServerSource
from skysort.sources.skyserver.query import provenance_text
from skysort.sources.urls import is_loopback_host, redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://skyserver.sdss.org", "https://skyserver.sdss.org"),
        ("https://me:s3cret@mirror.example.org/sky", "https://***@mirror.example.org/sky"),
        ("http://token@127.0.0.1:8080/", "http://***@127.0.0.1:8080/"),
        ("https://me:p@ss@host.example:443", "https://***@host.example:443"),
    ],
)
def test_redact_url_hides_user_and_password(url, shown):
    assert redact_url(url) == shown


def test_redact_text_hides_credentials_of_every_url_in_a_message():
    text = "cannot reach https://me:s3cret@a.example/x (then http://u:v@b.example)"
    assert redact_text(text) == "cannot reach https://***@a.example/x (then http://***@b.example)"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
     ("[::1]", True), ("LOCALHOST", True), ("localhost.evil.example", False),
     ("10.0.0.5", False), ("example.org", False), ("", False), (None, False)],
)  # fmt: skip
def test_loopback_hosts(host, loopback):
    assert is_loopback_host(host) is loopback


def test_provenance_never_holds_the_password():
    source = SkyServerSource(base_url="https://me:s3cret@mirror.example.org")
    text = provenance_text(source, dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    assert text == "skyserver DR17 https://***@mirror.example.org 2026-01-02"
    assert "s3cret" not in text and "me:" not in text
