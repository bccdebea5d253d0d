"""How the catalog scales: start-up, $match and memory at 5 / 105 / 1,050 / 10,005 trials (issue 12).

    .venv/bin/python bench/catalog_scale.py [--sizes 5,105,1050,10005] [--rounds 5] [--keep DIR]

For each size it writes a catalog into a temporary directory: the five mappings of mappings/ plus
records of ../shared/data/ctgov/v2 imported offline (service.importer, as `trial-eligibility import
--from-file` does) and replicated under new ids (`<NCT>-r<n>`) until the catalog holds that many
trials. Then, in a fresh process per size (so memory and start-up are that size's own):

- first start: `create_app()` on that directory with an empty compiled-catalog cache (every file
  parsed, rendered and validated), then start-up: the same with the cache the first start wrote (what
  every later start of an unchanged catalog costs; a changed file is compiled again);
- `$match?_count=10` on the 672-resource Synthea bundle 44717d84 (in-process test client), divided
  by `orjson.loads` of the same bytes timed back to back in each round (median over rounds);
- the audit record's size for that `$match` (the JSON line service.audit writes);
- max RSS of the process (start-up and the requests).

With `--gunicorn`, the largest catalog is also served by gunicorn (2 workers, the repository's
gunicorn.conf.py: the app is loaded once in the master and the workers forked from it) and each
process's RSS, PSS (shared pages split between the processes sharing them) and private memory is
printed after a $match in each worker: what copy-on-write leaves shared.

Every figure is measured in this one run. `--keep DIR` leaves the catalogs in DIR for other benches.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._server import EXTERNAL, PATIENTS, gunicorn  # noqa: E402

CTGOV = EXTERNAL / "ctgov" / "v2"
BUNDLE = PATIENTS / "synthea" / "44717d84-17d5-cefa-acf9-fe51fddc5d1c.json"
DATE = "2026-03-01"
ID_LINE = re.compile(r"^id: (\S+)$", re.MULTILINE)


def imported_mappings() -> list[tuple[str, str]]:
    """(NCT, mapping YAML text) for every shared ctgov record the importer turns into a loadable mapping."""
    from service.catalog import load_trial
    from service.errors import MappingError
    from service.importer import import_study
    from service.importer.files import to_yaml
    from service.sources.ctgov import studies_in

    seen: dict[str, Any] = {}
    for path in sorted(CTGOV.rglob("*.json")):
        for study in studies_in(json.loads(path.read_text(encoding="utf-8"))):
            seen.setdefault(study["protocolSection"]["identificationModule"]["nctId"], study)
    out: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as check:
        for nct, study in sorted(seen.items()):
            text = to_yaml(import_study(study))
            probe = Path(check) / f"{nct}.yaml"
            probe.write_text(text, encoding="utf-8")
            try:
                load_trial(probe)
            except MappingError:
                continue  # a record the importer cannot publish is not part of a real catalog either
            out.append((nct, text))
    return out


def build_catalog(directory: Path, size: int, sources: list[tuple[str, str]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    seeds = sorted((REPO / "mappings").glob("*.yaml"))
    for seed in seeds:
        shutil.copy(seed, directory / seed.name)
    for n in range(size - len(seeds)):
        nct, text = sources[n % len(sources)]
        new_id = f"{nct}-r{n // len(sources):04d}"
        (directory / f"{new_id}.yaml").write_text(ID_LINE.sub(f"id: {new_id}", text, count=1), encoding="utf-8")


def measure(directory: Path, rounds: int, cache: Path, startup_only: bool) -> dict[str, Any]:
    """Runs in the child process: start-up, $match ÷ orjson.loads, audit size, max RSS."""
    import logging

    import orjson

    from service.app import create_app
    from service.config import Config

    audit_sizes: list[int] = []

    class AuditSize(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            audit_sizes.append(len(orjson.dumps(getattr(record, "fields", {}))))

    start = time.perf_counter()
    config = Config(mappings_dir=directory, max_body_bytes=50_000_000, log_level="WARNING", catalog_cache_dir=cache)
    app = create_app(config)
    startup = time.perf_counter() - start
    if startup_only:
        return {"startup_s": startup}
    logging.getLogger("service.audit").addHandler(AuditSize())
    logging.getLogger("service.audit").setLevel(logging.INFO)
    client = app.test_client()
    body = BUNDLE.read_bytes()
    headers = {"Content-Type": "application/fhir+json"}

    def match() -> float:
        begin = time.perf_counter()
        response = client.post(f"/ResearchStudy/$match?date={DATE}&_count=10", data=body, headers=headers)
        elapsed = time.perf_counter() - begin
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return elapsed

    def loads() -> float:
        begin = time.perf_counter()
        orjson.loads(body)
        return time.perf_counter() - begin

    match()  # warm-up: first-call caches (UCUM registry, validation models)
    match_times, ratios = [], []
    for _ in range(rounds):
        parse = min(loads(), loads())
        every = match()
        match_times.append(every)
        ratios.append(every / parse)
    return {
        "trials": len(list(directory.glob("*.yaml"))),
        "startup_s": startup,
        "match_ms": statistics.median(match_times) * 1e3,
        "ratio": statistics.median(ratios),
        "audit_bytes": max(audit_sizes) if audit_sizes else 0,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def memory_mib(pid: int) -> tuple[float, float, float]:
    """(RSS, PSS, private) of a process from /proc/<pid>/smaps_rollup, MiB."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            fields[name] = int(rest.split()[0]) / 1024
    private = fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0)
    return fields.get("Rss", 0.0), fields.get("Pss", 0.0), private


def served(directory: Path, cache: Path) -> None:
    """gunicorn on the catalog (the compiled cache already written): memory of the master and each worker."""
    import http.client

    body = BUNDLE.read_bytes()
    env = {"MAPPINGS_DIR": str(directory), "CATALOG_CACHE_DIR": str(cache), "LOG_LEVEL": "WARNING"}
    with gunicorn(workers=2, extra_env=env) as server:
        for _ in range(6):  # enough requests that both workers answer at least one $match
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            conn.request("POST", f"/ResearchStudy/$match?date={DATE}&_count=10", body=body,
                         headers={"Content-Type": "application/fhir+json", "Connection": "close"})  # fmt: skip
            assert conn.getresponse().status == 200
            conn.close()
        for role, pid in [("master", server.process.pid)] + [("worker", p) for p in server.worker_pids()]:
            rss, pss, private = memory_mib(pid)
            print(f"  gunicorn {role:6} pid {pid}: RSS {rss:6.0f} MiB, PSS {pss:6.0f} MiB, private {private:6.0f} MiB")


def child(directory: Path, rounds: int, cache: Path, *flags: str) -> dict[str, Any]:
    """One measuring process (its own start-up and memory)."""
    command = [sys.executable, __file__, "--measure", str(directory), "--rounds", str(rounds), "--cache", str(cache)]
    done = subprocess.run([*command, *flags], capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{directory.name}: the measuring process failed:\n{done.stderr[-3000:]}")
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5,105,1050,10005")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="write the catalogs under this directory and keep them")
    parser.add_argument("--gunicorn", action="store_true", help="also serve the largest catalog with gunicorn")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child process's entry
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--startup-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.rounds, args.cache, args.startup_only)))
        return
    if not CTGOV.is_dir() or not BUNDLE.is_file():
        raise SystemExit(f"needs the shared data: {CTGOV} and {BUNDLE}")
    sizes = [int(s) for s in args.sizes.split(",")]
    sources = imported_mappings()
    print(f"{len(sources)} imported ClinicalTrials.gov records replicated under new ids; bundle {BUNDLE.name}")
    print(
        f"{'trials':>7} {'first start s':>13} {'start-up s':>10} {'$match ms':>10} {'÷ loads':>8} {'audit B':>8} "
        f"{'max RSS MiB':>12}"
    )
    root = args.keep or Path(tempfile.mkdtemp(prefix="catalog-scale-"))
    try:
        for size in sizes:
            directory = root / f"catalog-{size}"
            if not directory.is_dir():
                build_catalog(directory, size, sources)
            cache = Path(tempfile.mkdtemp(prefix="catalog-cache-"))
            cold = child(directory, args.rounds, cache, "--startup-only")
            row = child(directory, args.rounds, cache)
            print(
                f"{row['trials']:7,d} {cold['startup_s']:13.1f} {row['startup_s']:10.1f} {row['match_ms']:10.0f} "
                f"{row['ratio']:7.1f}x {row['audit_bytes']:8,d} {row['max_rss_mib']:12.0f}",
                flush=True,
            )
            if args.gunicorn and size == max(sizes):
                served(directory, cache)
            shutil.rmtree(cache, ignore_errors=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
