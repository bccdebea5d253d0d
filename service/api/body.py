"""Request bodies of POST operations: FHIR JSON only, size-limited, parsed with orjson.

Rule: a body is checked in this order: media type and content coding (415), size as sent and as decoded
(413, never truncated), arrival (400: a body cut short, malformed chunks, or slower than
BODY_TIMEOUT_SECONDS), JSON (400; 413 past 1024 levels; 400 for a repeated key), Bundle entry count
(413: too large in a dimension other than bytes), a FHIR resource (400).
"""

from __future__ import annotations

import re
import time
import zlib
from typing import Any

import orjson
from flask import request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from service.api.respond import FHIR_JSON, JSON, config
from service.config import ORJSON_MAX_DEPTH
from service.errors import FhirError, Issue
from service.json_keys import UncheckableJson, has_repeated_key

ACCEPTED_BODY_TYPES = (FHIR_JSON, JSON)
READ_SIZE = 64 * 1024
# Content-Encoding → zlib wbits: gzip (RFC 1952) and deflate (the zlib format, RFC 9110 §8.4.1.2).
DECODERS = {"gzip": 31, "x-gzip": 31, "deflate": 15}


def fhir_version_param() -> str | None:
    """The `fhirVersion` MIME parameter of the body (e.g. 4.0 for R4 bundles), if the client sent one."""
    match = re.search(r"fhirVersion\s*=\s*\"?([0-9.]+)", request.headers.get("Content-Type", ""))
    return match.group(1) if match else None


def fhir_json_body() -> dict[str, Any]:
    if request.mimetype not in ACCEPTED_BODY_TYPES:
        raise FhirError(415, Issue("not-supported", f"Send the body as {FHIR_JSON} or {JSON}"))
    raw = read_body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # The parser stops at 1024 levels ("depth limit exceeded"). Deeper nesting inside a resource is
        # checked where it could hurt, before a resource is validated (MAX_JSON_DEPTH): walking every
        # body here would cost more than parsing it.
        if "depth limit" in str(exc):
            raise _too_deep(ORJSON_MAX_DEPTH) from None
        raise FhirError(400, Issue("structure", "The body is not valid JSON")) from None
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FhirError(400, Issue("structure", "The body is not a FHIR resource (no resourceType)"))
    try:
        repeated = has_repeated_key(raw, body)
    except UncheckableJson:
        raise _too_deep(ORJSON_MAX_DEPTH) from None
    if repeated:
        raise FhirError(400, Issue("structure", "The body repeats a key within one JSON object (RFC 8259 §4)"))
    entries, max_entries = bundle_entry_count(body), config().max_bundle_entries
    if entries > max_entries:
        raise FhirError(413, Issue("too-long", f"The Bundle holds more than the limit of {max_entries} entries"))
    return body


def read_body() -> bytes:
    """The request body, decoded (gzip, deflate), at most MAX_BODY_BYTES both as sent and as decoded.

    Read in pieces so that neither a chunked body nor a small compressed one can grow past the limit in
    memory, and so that a body arriving too slowly is refused once BODY_TIMEOUT_SECONDS have passed."""
    limit, seconds = config().max_body_bytes, config().body_timeout_seconds
    coding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if coding not in ("identity", "", *DECODERS):
        raise FhirError(415, Issue("not-supported", "Content-Encoding must be gzip, deflate or identity"))
    decoder = zlib.decompressobj(DECODERS[coding]) if coding in DECODERS else None
    deadline = time.monotonic() + seconds
    pieces: list[bytes] = []
    size = 0
    try:
        while piece := request.stream.read(READ_SIZE):
            if decoder is not None:
                # At most one byte past the limit is inflated per round: a bomb is refused early.
                piece = decoder.decompress(piece, limit - size + 1)
                if decoder.unconsumed_tail:
                    raise _too_large(limit)
            size += len(piece)
            if size > limit:
                raise _too_large(limit)
            pieces.append(piece)
            if time.monotonic() > deadline:
                raise _too_slow(seconds)
        if decoder is not None:
            tail = decoder.flush()
            if not decoder.eof or size + len(tail) > limit:
                raise _bad_coding(coding) if not decoder.eof else _too_large(limit)
            pieces.append(tail)
    except RequestEntityTooLarge:  # werkzeug: a chunked body past MAX_CONTENT_LENGTH
        raise _too_large(limit) from None
    except ClientDisconnected:
        # The server's reader failed: the client sent less than its Content-Length before the read
        # timeout, a malformed chunk, or went away. werkzeug wraps each of these alike.
        raise FhirError(400, Issue("incomplete", _INCOMPLETE.format(seconds=seconds))) from None
    except zlib.error:
        raise _bad_coding(coding) from None
    return b"".join(pieces)


_INCOMPLETE = (
    "The request body did not arrive complete: shorter than its Content-Length within {seconds} s, "
    "or a malformed chunked encoding"
)


def _too_large(limit: int) -> FhirError:
    return FhirError(413, Issue("too-long", f"Request body larger than the limit of {limit} bytes"))


def _too_slow(seconds: int) -> FhirError:
    return FhirError(400, Issue("timeout", f"The request body did not arrive within {seconds} s"))


def _bad_coding(coding: str) -> FhirError:
    return FhirError(400, Issue("structure", f"The body is not valid {coding} data"))


def _too_deep(limit: int) -> FhirError:
    return FhirError(413, Issue("too-long", f"The JSON body is nested deeper than the limit of {limit} levels"))


def bundle_entry_count(body: dict[str, Any]) -> int:
    """Entries of the posted Bundle, or of the Bundles a Parameters body carries."""
    bundles: list[Any] = [body]
    if body.get("resourceType") == "Parameters" and isinstance(body.get("parameter"), list):
        bundles = [p.get("resource") for p in body["parameter"] if isinstance(p, dict)]
    return sum(
        len(b["entry"])
        for b in bundles
        if isinstance(b, dict) and b.get("resourceType") == "Bundle" and isinstance(b.get("entry"), list)
    )
