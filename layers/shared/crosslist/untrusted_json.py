"""Parse JSON sent by clients into values every store we write to can hold.

json.loads accepts things PostgreSQL, DynamoDB or pydantic then choke on, each a 500 instead of a
clear refusal: NUL characters (text and JSONB cannot store them), lone surrogates (not encodable as
UTF-8), NaN/Infinity, integers of thousands of digits, and nesting deep enough to exhaust recursion.
Every HTTP body and WebSocket message goes through `parse`, so each of those is refused in one place.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Deeper than any payload we accept (a product's marketplace attributes nest a few levels).
MAX_DEPTH = 32
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class InvalidJson(json.JSONDecodeError):
    """Not JSON, or JSON we refuse to store; the message says which."""

    def __init__(self, reason: str, document: str = "", position: int = 0) -> None:
        super().__init__(reason, document, position)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def _refuse_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not a number JSON allows")


def _finite(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise InvalidJson(f"the number {literal[:40]} is out of range")
    return number


def parse(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value in `text`, or InvalidJson with a reason a client can act on."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidJson("the body is not valid UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except InvalidJson:
        raise
    except json.JSONDecodeError as invalid:
        raise InvalidJson(f"not valid JSON: {invalid.msg} at character {invalid.pos}", text, invalid.pos) from None
    except RecursionError:
        raise InvalidJson(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as invalid:  # e.g. an integer longer than Python's 4300-digit conversion limit
        raise InvalidJson(f"not valid JSON: {invalid}") from None
    check(value, max_depth)
    return value


def check(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise InvalidJson if a parsed value nests too deep or holds a string no store can keep."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise InvalidJson(f"JSON nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    pending.append((child, depth + 1))
            else:
                pending.extend((child, depth + 1) for child in item)


def has_unstorable_text(text: str) -> bool:
    return _UNSTORABLE.search(text) is not None


def _check_text(text: str) -> None:
    if has_unstorable_text(text):
        raise InvalidJson("text must not contain NUL characters (\\u0000) or unpaired surrogates")
