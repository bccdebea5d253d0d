"""Repeated keys in a JSON object: orjson keeps the last one silently, so `{"birthDate": A, "birthDate": B}`
would be read as B while another reader takes A. A body with a repeated key is refused instead.

Rule: cheap on every body (two byte counts and one orjson.dumps, ~0.1-0.3x the orjson parse,
bench/eligibility.py), exact when the cheap test cannot decide. The count: each object member has one
colon outside strings, and strings hold the same colons in the sent text and in orjson's output (orjson
never escapes a colon), so the sent text has more colons than orjson's output exactly when a member
was dropped, i.e. a key repeated. A sender may escape a colon as `\\u003a`: then the exact parse decides.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

ESCAPED_COLON = re.compile(rb"\\u003[aA]")


class UncheckableJson(ValueError):
    """The text nests too deep for the exact check (Python's parser recursion limit)."""


def has_repeated_key(raw: bytes, document: Any) -> bool:
    """Whether the JSON text `raw` (already parsed by orjson into `document`) repeats a key in an object.

    Raises UncheckableJson when the exact check is needed but the text nests too deep for it."""
    if b"\\u003" in raw and ESCAPED_COLON.search(raw):
        return _repeats_exactly(raw)
    try:
        written = orjson.dumps(document).count(b":")
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (254 levels): count while walking
        written = _colons_as_written(document)
    return raw.count(b":") != written


def _colons_as_written(document: Any) -> int:
    """The colons orjson's output of `document` would have: one per object member, plus those in strings."""
    count, stack = 0, [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            count += len(node) + sum(key.count(":") for key in node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            count += node.count(":")
    return count


class _Repeated(Exception):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _Repeated
    return found


def _repeats_exactly(raw: bytes) -> bool:
    try:
        json.loads(raw, object_pairs_hook=_unique)
    except _Repeated:
        return True
    except RecursionError:
        raise UncheckableJson("nested too deep to check for repeated keys") from None
    except ValueError:  # orjson read it: a difference of dialect is not a repeated key
        return False
    return False
