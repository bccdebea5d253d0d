"""Hypothesis strategies for fuzzing the operations: real patient bundles (shared/data/patients), mutated.

Mutations: a value replaced by any JSON value, a key dropped, an entry duplicated or dropped, a
resourceType or Bundle.type changed, the bundle wrapped in Parameters, the bytes truncated; evaluation
dates anywhere in the calendar, its first and last years included (query and Parameters). `framed_body`
sends a body over HTTP as a server reads it: chunked (with malformed chunk sizes and terminators),
Content-Length shorter or longer than the body, gzip/deflate (broken too), for live servers. Synthea
bundles are cut to their first entries so one example stays fast. Used by tests/test_fuzz.py (CI,
bounded) and bench/fuzz.py (longer runs).
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
import zlib
from functools import cache
from typing import Any

from hypothesis import strategies as st

from tests.conftest import EXTERNAL_DATA

PATIENTS = EXTERNAL_DATA / "patients"
MAX_ENTRIES = 80
RESOURCE_TYPES = ["Patient", "Observation", "Condition", "Procedure", "MedicationStatement", "MedicationRequest",
                  "Immunization", "Bundle", "Parameters", "OperationOutcome", "Nonsense", ""]  # fmt: skip
DATES = ["2026-11-22", "1900-01-01", "2026-02-30", "9999-12-31", "not-a-date", "", "2026-11", "0001-01-01",
         "0001-02-28"]  # fmt: skip
# Any day of the calendar, with its first and last years (where lookback windows and ages leave it) often.
calendar_days = (
    st.dates(dt.date(1, 1, 1), dt.date(2, 12, 31)) | st.dates(dt.date(9998, 1, 1), dt.date(9999, 12, 31)) | st.dates()
).map(dt.date.isoformat)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(DATES + RESOURCE_TYPES),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)  # fmt: skip


@cache
def real_bundles() -> tuple[tuple[str, str], ...]:
    """(name, JSON text) of each real patient bundle, Synthea ones cut to MAX_ENTRIES entries."""
    found = []
    for path in sorted(PATIENTS.rglob("*.json")):
        document = json.loads(path.read_bytes())
        if isinstance(document.get("entry"), list):
            document["entry"] = document["entry"][:MAX_ENTRIES]
        found.append((path.name, json.dumps(document)))
    return tuple(found)


def _containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every dict and list in the document (the places a mutation can touch)."""
    paths = [path]
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        if isinstance(child, dict | list):
            paths.extend(_containers(child, (*path, key)))
    return paths


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


@st.composite
def mutated_body(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(source bundle name, request body bytes, description of the mutations)."""
    name, text = draw(st.sampled_from(real_bundles()))
    document = json.loads(text)
    done = []
    for _ in range(draw(st.integers(0, 4))):
        paths = _containers(document)
        target = _at(document, draw(st.sampled_from(paths)))
        kind = draw(st.sampled_from(["replace", "drop", "duplicate", "retype", "bundle-type"]))
        if kind == "bundle-type" and isinstance(document, dict):
            document["type"] = draw(st.sampled_from(["collection", "searchset", "history", "", None]))
        elif isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target, key=str)))
            if kind == "drop":
                del target[key]
            elif kind == "retype" and "resourceType" in target:
                target["resourceType"] = draw(st.sampled_from(RESOURCE_TYPES))
            else:
                target[key] = draw(json_values)
        elif isinstance(target, list) and target:
            index = draw(st.integers(0, len(target) - 1))
            if kind == "drop":
                del target[index]
            elif kind == "duplicate":
                target.append(copy.deepcopy(target[index]))
            else:
                target[index] = draw(json_values)
        done.append(kind)
    if draw(st.integers(0, 9)) == 0:
        parameters = [{"name": "bundle", "resource": document}]
        if draw(st.booleans()):
            parameters.append({"name": "date", "valueDate": draw(st.sampled_from(DATES) | calendar_days)})
        document = {"resourceType": "Parameters", "parameter": parameters}
        done.append("parameters")
    body = json.dumps(document).encode()
    if draw(st.integers(0, 19)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
        done.append("truncate")
    return name, body, ",".join(done) or "none"


def request_target(study_ids: list[str]) -> st.SearchStrategy[str]:
    """An operation URL: $evaluate-eligibility on a registered (or unknown) study, or $match; maybe a date."""
    paths = st.sampled_from([*(f"/ResearchStudy/{s}/$evaluate-eligibility" for s in study_ids), "/ResearchStudy/$match",
                             "/ResearchStudy/NCT00000000/$evaluate-eligibility"])  # fmt: skip
    dates = st.sampled_from(["", "", "?date=2026-11-22", "?date=2024-01-31", "?date=2026-11-22", "?date=bad"])
    return st.builds(lambda p, d: p + d, paths, dates | calendar_days.map(lambda day: f"?date={day}"))


CHUNK_SIZE_LINES = st.sampled_from([b"ZZ", b"-1", b"0x10", b"1 2", b"", b"f" * 40, b"5;\x00", b'5;a="b', b"+5", b" 5"])


@st.composite
def framed_body(draw: st.DrawFn, body: bytes) -> tuple[str, dict[str, str], bytes, bool]:
    """(description, headers, bytes on the wire, whether the server waits for more bytes) for `body`."""
    kind = draw(st.sampled_from(["chunked", "bad-chunk-size", "bad-chunk-end", "short-length", "long-length",
                                 "gzip", "deflate", "broken-gzip"]))  # fmt: skip
    if kind in ("gzip", "deflate", "broken-gzip"):
        packed = zlib.compress(body) if kind == "deflate" else gzip.compress(body)
        if kind == "broken-gzip":
            packed = packed[: draw(st.integers(0, len(packed) - 1))]
        coding = "deflate" if kind == "deflate" else "gzip"
        return kind, {"Content-Encoding": coding, "Content-Length": str(len(packed))}, packed, False
    if kind == "short-length":  # the rest of the body is read as the next request: one answer, then closed
        return kind, {"Content-Length": str(draw(st.integers(0, len(body))))}, body, False
    if kind == "long-length":
        return kind, {"Content-Length": str(len(body) + draw(st.integers(1, 1000)))}, body, True
    size = draw(st.integers(1, 65536))
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces]
    at = draw(st.integers(0, len(chunks)))
    if kind == "bad-chunk-size":
        chunks.insert(at, draw(CHUNK_SIZE_LINES) + b"\r\nabcde\r\n")
    elif kind == "bad-chunk-end" and chunks:
        index = min(at, len(chunks) - 1)
        chunks[index] = chunks[index][:-2] + draw(st.sampled_from([b"XX", b"\n", b"\r"]))
    return kind, {"Transfer-Encoding": "chunked"}, b"".join(chunks) + b"0\r\n\r\n", False
