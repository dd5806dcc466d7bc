"""Strict little readers for ARI JSON objects.

Asterisk's JSON is trusted for shape but not blindly: a wrong type in a field we route on
must become a `FieldError` (reported as a malformed event), never an AttributeError deep
inside a call's actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

JsonObject = Mapping[str, Any]


class FieldError(ValueError):
    """A required field is missing or has the wrong type."""


def as_object(value: object, what: str) -> JsonObject:
    if not isinstance(value, Mapping):
        raise FieldError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def req_object(data: JsonObject, key: str) -> JsonObject:
    return as_object(data.get(key), key)


def opt_object(data: JsonObject, key: str) -> JsonObject | None:
    value = data.get(key)
    return None if value is None else as_object(value, key)


def req_str(data: JsonObject, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise FieldError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def opt_str(data: JsonObject, key: str, default: str = "") -> str:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise FieldError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def req_int(data: JsonObject, key: str) -> int:
    value = data.get(key)
    # bool is an int subclass; a boolean where a number belongs is a malformed message.
    if not isinstance(value, int) or isinstance(value, bool):
        raise FieldError(f"{key}: expected an integer, got {type(value).__name__}")
    return value


def opt_int(data: JsonObject, key: str) -> int | None:
    if data.get(key) is None:
        return None
    return req_int(data, key)


def opt_bool(data: JsonObject, key: str) -> bool | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise FieldError(f"{key}: expected a boolean, got {type(value).__name__}")
    return value


def str_tuple(data: JsonObject, key: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FieldError(f"{key}: expected a list of strings")
    return tuple(value)


def str_mapping(data: JsonObject, key: str) -> Mapping[str, str]:
    value = data.get(key)
    if value is None:
        return {}
    obj = as_object(value, key)
    return {str(k): str(v) for k, v in obj.items()}


def timestamp(data: JsonObject, key: str) -> datetime | None:
    """Asterisk's `2024-05-01T10:00:00.123+0700`, or None when absent or unreadable.

    Lenient on purpose: a timestamp in an odd format must not cost us a StasisStart.
    """
    value = data.get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
