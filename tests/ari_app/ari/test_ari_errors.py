"""The status -> exception mapping and the config's refusal to put credentials in URLs."""

from __future__ import annotations

import base64

import pytest

from ari_app.ari import (
    AriAllocationFailed,
    AriAuthError,
    AriBadRequest,
    AriConfig,
    AriError,
    AriInvalidState,
    AriNotFound,
    AriNotInStasis,
    AriUnavailable,
    AriUnprocessable,
    error_for_status,
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, AriBadRequest),
        (401, AriAuthError),
        (403, AriAuthError),
        (404, AriNotFound),
        (409, AriNotInStasis),
        (412, AriInvalidState),
        (422, AriUnprocessable),
        (500, AriUnavailable),
        (502, AriUnavailable),
        (503, AriUnavailable),
        (405, AriError),
        (418, AriError),
    ],
)
def test_status_maps_to_exception_class(status: int, expected: type[AriError]) -> None:
    error = error_for_status("POST", "/channels/c1/answer", status, b'{"message": "nope"}')

    assert type(error) is expected
    assert isinstance(error, AriError)
    assert (error.method, error.path, error.status, error.message) == (
        "POST",
        "/channels/c1/answer",
        status,
        "nope",
    )
    assert str(error) == f"POST /channels/c1/answer -> {status}: nope"


def test_allocation_failed_is_its_own_unavailable() -> None:
    error = error_for_status("POST", "/channels", 500, b'{"error": "Allocation failed"}')

    assert type(error) is AriAllocationFailed
    assert isinstance(error, AriUnavailable)
    assert error.message == "Allocation failed"


def test_other_500_is_plain_unavailable() -> None:
    error = error_for_status("POST", "/channels", 500, b'{"message": "Internal Server Error"}')

    assert type(error) is AriUnavailable


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", ""),
        (b"<html><body>Bad Gateway</body></html>", "<html><body>Bad Gateway</body></html>"),
        (b'["a list"]', '["a list"]'),
        (b'{"message": 5}', '{"message": 5}'),
        ("x" * 500, "x" * 200),
    ],
)
def test_unusual_error_bodies_still_give_a_message(body: bytes | str, message: str) -> None:
    error = error_for_status("GET", "/channels", 502, body)

    assert type(error) is AriUnavailable
    assert error.message == message


def test_config_builds_urls_and_header() -> None:
    config = AriConfig(username="siaga", password="pw", url="http://127.0.0.1:8088/")

    assert config.rest_url == "http://127.0.0.1:8088/ari"
    assert config.events_url == "ws://127.0.0.1:8088/ari/events"
    assert config.authorization() == "Basic " + base64.b64encode(b"siaga:pw").decode()
    assert "pw" not in repr(config)


def test_config_https_uses_wss() -> None:
    config = AriConfig(username="siaga", password="pw", url="https://pbx.example:8089")

    assert config.events_url == "wss://pbx.example:8089/ari/events"


@pytest.mark.parametrize(
    "url",
    ["http://siaga:pw@127.0.0.1:8088", "ftp://127.0.0.1", "127.0.0.1:8088", "http://"],
)
def test_config_rejects_bad_urls_and_credentials_in_url(url: str) -> None:
    with pytest.raises(ValueError):
        AriConfig(username="siaga", password="pw", url=url)
