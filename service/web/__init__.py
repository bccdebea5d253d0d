"""The coordinator page: static HTML, CSS and vanilla JavaScript served at /app/ (service/api/web.py).

Rule: the page is built only on the public FHIR API. Its JavaScript calls the same endpoints as any client
(`/ResearchStudy`, `/EvidenceVariable`, `$match`, `$evaluate-eligibility`) with the same media types and
bearer token; it never calls a private route and the server renders nothing for it. Patient data (a
dropped Bundle, or what it fetches from the FHIR server the coordinator names) stays in the browser's
memory and goes only into the operation's request body: nothing is stored on the server or in the
browser's storage. No build step: the files here are what the browser runs.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
