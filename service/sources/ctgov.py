"""ClinicalTrials.gov API v2 client: every answer is checked for shape before it is returned.

Rule: callers get study records (dicts with a `protocolSection`) or a typed CtgovError; transient
failures (429, 5xx, connection errors) are retried with exponential backoff honouring Retry-After.
Errors never carry the request content beyond the study id the caller asked for.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import requests

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
NCT_ID = re.compile(r"^NCT\d{8}$")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The API caps pageSize at 1000 (https://clinicaltrials.gov/data-api/api); the ids filter shares
# the URL with the rest of the query, so ask for modest batches.
MAX_IDS_PER_REQUEST = 100

Study = dict[str, Any]


class CtgovError(Exception):
    """The registry could not give a usable answer."""


class StudyNotFound(CtgovError):
    def __init__(self, nct_id: str) -> None:
        super().__init__(f"{nct_id} is not on ClinicalTrials.gov")
        self.nct_id = nct_id


class MalformedResponse(CtgovError):
    """The answer is not the JSON shape the v2 API documents (e.g. an HTML error page)."""


class TransientFailure(CtgovError):
    """Retries were exhausted on 429/5xx or connection errors."""


@dataclass(frozen=True)
class SearchPage:
    studies: tuple[Study, ...]
    next_page_token: str | None
    total_count: int | None = None


@dataclass
class CtgovClient:
    """`sleep` is injectable so tests do not wait for the backoff."""

    base_url: str = field(default_factory=lambda: os.environ.get("CTGOV_BASE_URL", DEFAULT_BASE_URL))
    timeout: float = 30.0
    max_retries: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    session: requests.Session = field(default_factory=requests.Session)

    def get_study(self, nct_id: str) -> Study:
        nct = check_nct_id(nct_id)
        payload = self._get(f"/studies/{nct}", {"format": "json"}, not_found=nct)
        return check_study(payload)

    def get_studies(self, nct_ids: Sequence[str]) -> list[Study]:
        """Several studies by id (`filter.ids`), in the order asked; a missing one is StudyNotFound."""
        wanted = [check_nct_id(n) for n in nct_ids]
        found: dict[str, Study] = {}
        for start in range(0, len(wanted), MAX_IDS_PER_REQUEST):
            batch = wanted[start : start + MAX_IDS_PER_REQUEST]
            params = {"filter.ids": ",".join(batch), "pageSize": str(len(batch)), "format": "json"}
            for study in self._page(params).studies:
                found[nct_id_of(study)] = study
        for nct in wanted:
            if nct not in found:
                raise StudyNotFound(nct)
        return [found[n] for n in wanted]

    def search(
        self,
        condition: str | None = None,
        term: str | None = None,
        page_size: int = 100,
        page_token: str | None = None,
        status: Sequence[str] = (),
        location: str | None = None,
    ) -> SearchPage:
        """One page of a search: condition (`query.cond`), free term (`query.term`), location
        (`query.locn`), overall status (`filter.overallStatus`, e.g. RECRUITING)."""
        if not condition and not term and not location:
            raise ValueError("give a condition, a term and/or a location")
        params = {"pageSize": str(page_size), "format": "json", "countTotal": "true"}
        if condition:
            params["query.cond"] = condition
        if term:
            params["query.term"] = term
        if location:
            params["query.locn"] = location
        if status:
            params["filter.overallStatus"] = ",".join(s.strip().upper() for s in status)
        if page_token:
            params["pageToken"] = page_token
        return self._page(params)

    def search_all(
        self,
        condition: str | None = None,
        term: str | None = None,
        page_size: int = 100,
        max_pages: int = 50,
        status: Sequence[str] = (),
        location: str | None = None,
    ) -> Iterator[Study]:
        """Every study of a search, following `nextPageToken` (bounded by max_pages)."""
        token: str | None = None
        for _ in range(max_pages):
            page = self.search(condition, term, page_size, token, status, location)
            yield from page.studies
            token = page.next_page_token
            if not token:
                return

    def _page(self, params: Mapping[str, str]) -> SearchPage:
        payload = self._get("/studies", params)
        if not isinstance(payload, dict) or not isinstance(payload.get("studies"), list):
            raise MalformedResponse("a /studies answer must be an object with a 'studies' list")
        token = payload.get("nextPageToken")
        if token is not None and not isinstance(token, str):
            raise MalformedResponse("nextPageToken must be a string")
        total = payload.get("totalCount")
        return SearchPage(
            studies=tuple(check_study(s) for s in payload["studies"]),
            next_page_token=token or None,
            total_count=total if isinstance(total, int) else None,
        )

    def _get(self, path: str, params: Mapping[str, str], not_found: str | None = None) -> Any:
        url = self.base_url.rstrip("/") + path
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self.session.get(
                    url, params=params, timeout=self.timeout, headers={"Accept": "application/json"}
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last:
                    raise TransientFailure(f"ClinicalTrials.gov unreachable: {type(exc).__name__}") from exc
                self.sleep(self._backoff(attempt, None))
                continue
            if response.status_code == 404 and not_found is not None:
                raise StudyNotFound(not_found)
            if response.status_code in RETRY_STATUSES:
                if last:
                    raise TransientFailure(
                        f"ClinicalTrials.gov answered {response.status_code} after {attempt + 1} attempts"
                    )
                self.sleep(self._backoff(attempt, response.headers.get("Retry-After")))
                continue
            if response.status_code != 200:
                raise CtgovError(f"ClinicalTrials.gov answered {response.status_code}")
            try:
                return response.json()
            except ValueError as exc:
                raise MalformedResponse("ClinicalTrials.gov answered with something that is not JSON") from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        told = parse_retry_after(retry_after)
        if told is not None:
            return min(told, self.max_backoff_seconds)
        return float(min(self.backoff_seconds * 2**attempt, self.max_backoff_seconds))


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def check_nct_id(value: str) -> str:
    nct = value.strip().upper()
    if not NCT_ID.match(nct):
        raise ValueError("an NCT number is NCT followed by 8 digits")
    return nct


def check_study(payload: Any) -> Study:
    if not isinstance(payload, dict) or not isinstance(payload.get("protocolSection"), dict):
        raise MalformedResponse("a study record must be an object with a 'protocolSection'")
    nct_id_of(payload)
    return payload


def nct_id_of(study: Mapping[str, Any]) -> str:
    ident = study.get("protocolSection", {}).get("identificationModule", {})
    nct = ident.get("nctId") if isinstance(ident, dict) else None
    if not isinstance(nct, str) or not NCT_ID.match(nct):
        raise MalformedResponse("a study record must carry identificationModule.nctId")
    return nct


def studies_in(payload: Any) -> list[Study]:
    """Study records from a recorded answer: one study, a /studies page, or the website's array."""
    if isinstance(payload, list):
        return [check_study(s) for s in payload]
    if isinstance(payload, dict) and isinstance(payload.get("studies"), list):
        return [check_study(s) for s in payload["studies"]]
    return [check_study(payload)]
