"""The compiled-catalog cache: a mapping file is compiled (parsed, rendered, validated) once per content.

Rule: an entry is found only by the file's name and the SHA-256 of its bytes, in a cache file named by
a fingerprint of the service's own code and the FHIR model package; so an edited file, a new file or a
new release of the code is always compiled (and checked) anew, and a bad file still stops the start.
The cache is a pickle, so it is read only from a directory and file that this user owns and nobody
else can write; anything else is ignored (and the catalog compiled from the files).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)
SERVICE_ROOT = Path(__file__).resolve().parents[1]
Entries = dict[tuple[str, str], Any]  # (file name, sha256 of its bytes) → the compiled Trial


def code_fingerprint() -> str:
    """Changes whenever the code that compiles or publishes a mapping could: every service module, the
    FHIR model package's version and the Python version."""
    digest = hashlib.sha256(sys.version.encode())
    for package in ("fhir.resources", "fhir-core", "pydantic", "PyYAML"):
        try:
            digest.update(f"{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(package.encode())
    for source in sorted(SERVICE_ROOT.rglob("*.py")):
        digest.update(source.relative_to(SERVICE_ROOT).as_posix().encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:20]


class CompiledCache:
    def __init__(self, directory: Path, mappings_dir: Path) -> None:
        self.directory = directory
        where = hashlib.sha256(str(mappings_dir.resolve()).encode()).hexdigest()[:12]
        self.path = directory / f"{code_fingerprint()}-{where}.pickle"

    def read(self) -> Entries:
        if not self._private(self.directory) or not self.path.exists() or not self._private(self.path):
            return {}
        try:
            with self.path.open("rb") as handle:
                entries = pickle.load(handle)  # noqa: S301 - our own file, in a directory only we can write
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as exc:
            LOG.warning("catalog cache %s unreadable (%s); compiling every mapping", self.path, type(exc).__name__)
            return {}
        return entries if isinstance(entries, dict) else {}

    def write(self, entries: Entries) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self._private(self.directory):
                LOG.warning("catalog cache directory %s is not private to this user; not written", self.directory)
                return
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".catalog-", suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(entries, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
            for stale in self.directory.glob("*.pickle"):
                if stale != self.path and stale.name.endswith(self.path.name.split("-", 1)[1]):
                    stale.unlink(missing_ok=True)  # the same catalog compiled by an older release of the code
        except OSError as exc:
            LOG.warning("catalog cache not written (%s): the next start compiles again", type(exc).__name__)

    @staticmethod
    def _private(path: Path) -> bool:
        try:
            info = path.lstat()
        except OSError:
            return False
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
            return False
        return not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
