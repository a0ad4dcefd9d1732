"""Typed readers for JSON request fields: each names the field and what is allowed when it is wrong."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.front.errors import InvalidRequest

MAX_INT32 = 2**31 - 1


def require_object(field: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(field, f"must be a JSON object, not {_kind(value)}")
    return value


def require_list(field: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(field, f"must be a JSON list, not {_kind(value)}")
    return value


def reject_unknown(field: str, obj: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed_set = allowed if isinstance(allowed, frozenset) else frozenset(allowed)
    if allowed_set.issuperset(obj):
        return
    unknown = sorted(k for k in obj if k not in allowed_set)
    if unknown:
        where = f"{field}.{unknown[0]}" if field else unknown[0]
        raise InvalidRequest(where, f"unknown field; allowed: {', '.join(sorted(allowed_set))}")


def require_present(field: str, obj: Mapping[str, Any], key: str) -> Any:
    if key not in obj or obj[key] is None:
        raise InvalidRequest(_join(field, key), "is required")
    return obj[key]


def as_int(field: str, value: Any, *, minimum: int | None = None, maximum: int = MAX_INT32) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(field, f"must be an integer, not {_kind(value)}")
    if minimum is not None and value < minimum:
        raise InvalidRequest(field, f"must be at least {minimum}, not {value}")
    if value > maximum:
        raise InvalidRequest(field, f"must be at most {maximum}, not {value}")
    return value


def as_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequest(field, f"must be true or false, not {_kind(value)}")
    return value


def as_str(field: str, value: Any, *, nonempty: bool = False, max_len: int = 65536) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(field, f"must be a string, not {_kind(value)}")
    if nonempty and not value:
        raise InvalidRequest(field, "must not be empty")
    if len(value) > max_len:
        raise InvalidRequest(field, f"must be at most {max_len} characters")
    if "\x00" in value:
        raise InvalidRequest(field, "must not contain NUL characters")
    return value


def as_number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(field, f"must be a number, not {_kind(value)}")
    return float(value)


# Each list/map reader checks the common well-formed case in one pass first (a bunch holds
# thousands of specs), and walks item by item only to name the offending item.

def as_str_list(field: str, value: Any) -> tuple[str, ...]:
    if type(value) is list and all(type(v) is str and len(v) <= 65536 for v in value) \
            and "\x00" not in "".join(value):
        return tuple(value)
    return tuple(as_str(f"{field}[{i}]", v) for i, v in enumerate(require_list(field, value)))


def as_int_list(field: str, value: Any, *, minimum: int) -> tuple[int, ...]:
    if type(value) is list and all(type(v) is int and minimum <= v <= MAX_INT32 for v in value):
        return tuple(value)
    return tuple(as_int(f"{field}[{i}]", v, minimum=minimum) for i, v in enumerate(require_list(field, value)))


def as_attributes(field: str, value: Any) -> dict[str, str]:
    if type(value) is dict and all(type(k) is str and type(v) is str and len(k) <= 256 and len(v) <= 65536
                                   and "\x00" not in k and "\x00" not in v for k, v in value.items()):
        return dict(value)
    obj = require_object(field, value)
    for key, item in obj.items():
        as_str(f"{field}.{key}", key, max_len=256)
        as_str(f"{field}.{key}", item)
    return dict(obj)


def optional(obj: Mapping[str, Any], key: str) -> Any:
    """The value of an optional field; JSON null counts as absent."""
    return obj.get(key)


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)
