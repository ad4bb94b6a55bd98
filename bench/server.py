"""REST throughput and latency of ``yiyang serve`` against a bare Flask app on the same stack.

    python -m bench.server [--patients 100000] [--duration 12] [--databases sqlite,postgresql]
                           [--scale 3334] [--profile DIR]

Loads ``--patients`` valid Patients plus one Encounter and one Coverage each straight into
the store (SQLite file cached under ``--cache``; PostgreSQL database ``yiyang_bench_*`` kept
for the next run), starts the gateway with 2 gunicorn workers on a copy of it, and drives it
over loopback with wrk (16 connections, ``--latency``) from a separate process:

    floor            GET /fhir/floor on bench/floor_app.py (2 workers as well, of the same kind)
    metadata         GET /fhir/metadata (a large document; for information)
    read             GET /fhir/Patient/<id>, ids spread over the data set
    search-id        GET /fhir/Patient?identifier=urn:oid:2.16.156.10011.1.3|<身份证号>
    search-name      GET /fhir/Patient?name=<姓>&birthdate=<date>
    create           POST /fhir/Patient, each a different valid yy-patient (full validation)
    transaction      POST /fhir, 10 creates (Patient + 5 Encounters + 4 Coverages, urn:uuid)
    read, search-id  also on the same store without security (bench/open_app.py: no tokens,
                     rate limits or audit trail), both servers up, in eight alternating
                     quarter-length runs (secured, open, open, secured, ...), for what security
                     costs

Each scenario gets a fresh server after a 3 s warm-up (requests a timed-out scenario left in
the listen backlog must not eat the next one's time).  Ratios are against the floor measured
just before, in the same run (the machine is shared).
Then, on PostgreSQL, the two searches on a store of ``--scale`` patients and on a fresh copy
of the full one, both servers up and taking turns as above, for the latency growth from the
small store to the full one (goal: within 2x from 10,000 to 1,000,000 resources; ``--scale
3334`` is about 10,000 resources; loading 1,000,000 takes long here, so the full store is
``--patients`` and ``--patients 333334`` is the opt-in).
wrk is not a Python package: ``apt-get install -y wrk`` (Debian/Ubuntu), ``brew install wrk``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from bench import server_data
from gateway.config import Config
from gateway.storage import sqlite_url

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "wrk_replay.lua"
#: bump when the generated data or the way it is loaded changes, so no stale cache is reused
CACHE_VERSION = 1
LIST_SIZE = 20_000
SCENARIOS = ("metadata", "read", "search-id", "search-name", "create", "transaction")
#: the scenarios run again without security, to measure what tokens and the audit trail cost
SECURITY_COMPARED = ("read", "search-id")
#: alternating runs of each server when security is compared (secured first, then open first …),
#: each a quarter of --duration: with four half-length runs the cost of one code swung by ±2
#: points from one benchmark to the next; more, shorter turns cancel more of the drift
COMPARED_ROUNDS = 8


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    target: str
    items: str  # file of paths or bodies
    per_request: int = 1  # resources written per request
    #: the items of each wrk run, when no item may be sent twice (a new person)
    fresh: Callable[[], list[str]] | None = None


@dataclass(frozen=True)
class Server:
    """A running server as the load generator sees it."""

    port: int
    #: whether its requests carry a bearer token (not the floor's nor the open app's), fetched
    #: for each run: a token lives five minutes, less than a slow machine's scenarios
    secured: bool = False
    pid: int = 0


@dataclass(frozen=True)
class Result:
    scenario: str
    per_second: float
    p50_ms: float
    p99_ms: float
    failed: int
    per_request: int
    #: CPU the server's processes spent per request (user and system, every thread), in µs
    cpu_us: float = 0.0

    @property
    def resources(self) -> float:
        return self.per_second * self.per_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000, help="people loaded (3 resources each)")
    parser.add_argument("--duration", type=int, default=12, help="seconds of wrk per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of both servers")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="a subset, for a quicker look")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL")
    parser.add_argument("--scale", default="3334", help="patients of the small PostgreSQL store; 0 skips")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")))
    parser.add_argument("--profile", type=Path, help="also py-spy each gateway scenario (unmeasured) into DIR")
    parser.add_argument("--clean", action="store_true", help="drop the cached stores and exit")
    args = parser.parse_args()
    cache = args.cache / "yiyang-bench"
    if args.clean:
        clean(cache, args.postgres)
        return
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (Debian/Ubuntu) or brew install wrk (macOS)")
    print(
        f"{args.patients:,} Patients + Encounters + Coverages ({3 * args.patients:,} resources), "
        f"{args.workers} gunicorn workers, wrk {args.connections} connections x {args.duration} s, "
        f"{os.cpu_count()} CPUs (shared with wrk)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="yiyang-bench-") as folder:
        work = Path(folder)
        scenarios = write_lists(work, args.patients)
        bench = Bench(wrk, args, work)
        with bench.floor_server() as floor:
            for database in args.databases.split(","):
                bench.run_database(database.strip(), cache, scenarios, floor)
            if "postgresql" in args.databases and int(args.scale):
                bench.run_scale(int(args.scale), cache, scenarios)


def write_lists(work: Path, patients: int) -> dict[str, Scenario]:
    """The request lists the wrk script replays, one file per scenario.  The creates' and the
    transactions' are made anew for each wrk run, of people no earlier run sent."""
    chosen = server_data.sample_people(patients, 5_000)
    people = server_data.NewPeople()
    lists = {
        "floor": ["/fhir/floor"],
        "metadata": ["/fhir/metadata"],
        "read": server_data.read_paths(patients, LIST_SIZE),
        "search-id": server_data.identifier_paths(chosen),
        "search-name": server_data.name_birthdate_paths(chosen),
    }
    fresh = {
        "create": lambda: [orjson.dumps(p).decode() for p in people.take(LIST_SIZE)],
        "transaction": lambda: [
            orjson.dumps(b).decode() for b in server_data.transaction_bundles(4_000, people=people)
        ],
    }
    for name, lines in lists.items():
        write_list(work / f"{name}.list", lines)
    return {
        name: Scenario(
            name,
            "POST" if name in fresh else "GET",
            {"create": "/fhir/Patient", "transaction": "/fhir"}.get(name, "/"),
            str(work / f"{name}.list"),
            10 if name == "transaction" else 1,
            fresh.get(name),
        )
        for name in [*lists, *fresh]
    }


def write_list(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class Bench:
    def __init__(self, wrk: str, args: argparse.Namespace, work: Path) -> None:
        self.wrk, self.args, self.work = wrk, args, work
        self.results: dict[str, dict[str, Result]] = {}

    # -- servers ---------------------------------------------------------------------------
    @contextmanager
    def floor_server(self) -> Iterator[Server]:
        port = free_port()
        command = [sys.executable, "-m", "gunicorn", "--workers", str(self.args.workers), *gateway_workers()]
        command += ["--bind", f"127.0.0.1:{port}", "--graceful-timeout", "10", "bench.floor_app:app"]
        with running(command, port, "/fhir/floor", self.work / "floor.log") as process:
            yield Server(port, pid=process.pid)

    @contextmanager
    def gateway(self, database_url: str, log: str) -> Iterator[Server]:
        port = free_port()
        yiyang = str(Path(sys.executable).with_name("yiyang"))
        command = [
            yiyang,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(self.args.workers),
            "--database",
            database_url,
        ]
        # security stays on: the figures include token checks and the audit trail.  The bench
        # client authenticates with a secret (allowed here for the benchmark only)
        register_client(yiyang, database_url, self.work)
        with running(
            command,
            port,
            "/fhir/metadata",
            self.work / log,
            {"YIYANG_ALLOW_CLIENT_SECRET": "true", "YIYANG_RATE_LIMIT_PER_SECOND": "1000000"},
        ) as process:
            yield Server(port, secured=True, pid=process.pid)

    @contextmanager
    def open_gateway(self, database_url: str, log: str) -> Iterator[Server]:
        """The same app without security (``bench/open_app.py``), served the way ``yiyang
        serve`` serves the gateway: gunicorn, its workers (:func:`gateway_workers`), no access
        log."""
        port = free_port()
        command = [sys.executable, "-m", "gunicorn", "--workers", str(self.args.workers), *gateway_workers()]
        command += ["--bind", f"127.0.0.1:{port}", "--graceful-timeout", "10", "bench.open_app:app"]
        environment = {"YIYANG_DATABASE_URL": database_url, "YIYANG_PORT": str(port)}
        with running(command, port, "/fhir/metadata", self.work / log, environment) as process:
            yield Server(port, pid=process.pid)

    # -- runs ------------------------------------------------------------------------------
    def run_database(self, database: str, cache: Path, scenarios: dict[str, Scenario], floor: Server) -> None:
        print(f"\n{database}: preparing the store", flush=True)
        with working_store(database, self.args.patients, cache, self.args.postgres) as url:
            results = {"floor": self.measure(floor, scenarios["floor"])}
            chosen = [name.strip() for name in self.args.scenarios.split(",")]
            for name in [name for name in SCENARIOS if name in chosen]:
                # a fresh server per scenario: requests a timed-out scenario left queued in the
                # listen backlog must not be served on the next scenario's time
                with self.gateway(url, f"{database}-{name}.log") as server:
                    if name in SECURITY_COMPARED:
                        with self.open_gateway(url, f"{database}-{name}-open.log") as bare:
                            results[name], results[f"{name} open"] = self.compare(server, bare, scenarios[name])
                            if self.args.profile:
                                self.profile(bare, scenarios[name], f"{database}-{name}-open")
                    else:
                        results[name] = self.measure(server, scenarios[name])
                    if self.args.profile and name != "metadata":
                        self.profile(server, scenarios[name], f"{database}-{name}")
        self.results[database] = results
        report(database, results)

    def run_scale(self, small: int, cache: Path, scenarios: dict[str, Scenario]) -> None:
        """The two searches on the small store and on a fresh copy of the full one, both
        servers up and taking turns, for how latency grows with the store."""
        full = self.results.get("postgresql")
        if full is None:
            return
        print(f"\npostgresql: search latency on {3 * small:,} vs {3 * self.args.patients:,} resources", flush=True)
        (self.work / "small").mkdir(exist_ok=True)
        few = write_lists(self.work / "small", small)
        small_url = cached_postgres(small, cache, self.args.postgres)
        with working_store("postgresql", self.args.patients, cache, self.args.postgres) as full_url:
            for name in [name for name in ("search-id", "search-name") if name in full]:
                with (
                    self.gateway(small_url, f"scale-{name}-small.log") as low_server,
                    self.gateway(full_url, f"scale-{name}-full.log") as high_server,
                ):
                    low, high = self.alternated(
                        (low_server, replace(few[name], name=f"{name} small")), (high_server, scenarios[name])
                    )
                print(
                    f"  {name:<12} p50 {low.p50_ms:6.1f} -> {high.p50_ms:6.1f} ms ({high.p50_ms / low.p50_ms:.2f}x), "
                    f"p99 {low.p99_ms:6.1f} -> {high.p99_ms:6.1f} ms ({high.p99_ms / low.p99_ms:.2f}x), "
                    f"{low.per_second:,.0f} -> {high.per_second:,.0f} req/s  (goal: within 2x)",
                    flush=True,
                )

    def wrk_run(self, server: Server, scenario: Scenario, seconds: int, timeout: str = "10s") -> dict[str, int]:
        if scenario.fresh is not None:
            write_list(Path(scenario.items), scenario.fresh())
        environment = {
            **os.environ,
            "BENCH_LIST": scenario.items,
            "BENCH_METHOD": scenario.method,
            "BENCH_TARGET": scenario.target,
            "BENCH_THREADS": str(self.args.threads),
            "BENCH_TOKEN": fetch_token(server.port) if server.secured else "",
        }
        command = [self.wrk, "--latency", "-t", str(self.args.threads), "-c", str(self.args.connections)]
        command += ["-d", f"{seconds}s", "--timeout", timeout, "-s", str(SCRIPT), f"http://127.0.0.1:{server.port}"]
        spent = server_cpu_seconds(server.pid)
        done = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
        spent = server_cpu_seconds(server.pid) - spent
        line = next(line for line in done.stdout.splitlines() if line.startswith("BENCH "))
        return {**json.loads(line.removeprefix("BENCH ")), "cpu_us": round(spent * 1e6)}

    def measure(self, server: Server, scenario: Scenario) -> Result:
        # a short unmeasured run first: each worker compiles the validator, warms its caches
        self.wrk_run(server, scenario, 3, timeout="60s")
        return self.reported(scenario, [self.wrk_run(server, scenario, self.args.duration)])

    def compare(self, secured: Server, bare: Server, scenario: Scenario) -> tuple[Result, Result]:
        """The scenario on the secured gateway and on the open app, taking turns."""
        return self.alternated((secured, scenario), (bare, replace(scenario, name=f"{scenario.name} open")))

    def alternated(self, first: tuple[Server, Scenario], second: tuple[Server, Scenario]) -> tuple[Result, Result]:
        """Two servers, both running, each driven by its own scenario in short alternating runs
        (first, second, second, first, …): drift of a shared machine over the minutes of a
        benchmark — another tenant, the kernel writing back — then weighs on both alike, where
        one run after the other gave the security cost anywhere from 4 % to 21 %."""
        for server, scenario in (first, second):
            self.wrk_run(server, scenario, 3, timeout="60s")
        runs: tuple[list[dict[str, int]], list[dict[str, int]]] = ([], [])
        seconds = max(2, self.args.duration // 4)
        for round_ in range(COMPARED_ROUNDS):
            for index in (0, 1) if round_ % 2 == 0 else (1, 0):
                server, scenario = (first, second)[index]
                runs[index].append(self.wrk_run(server, scenario, seconds))
        return self.reported(first[1], runs[0]), self.reported(second[1], runs[1])

    @staticmethod
    def reported(scenario: Scenario, runs: list[dict[str, int]]) -> Result:
        """One result of one or more wrk runs: their requests over their time, and the
        latencies of the median run."""
        requests = sum(run["requests"] for run in runs)
        seconds = sum(run["duration_us"] for run in runs) / 1e6
        middle = sorted(runs, key=lambda run: run["p50_us"])[len(runs) // 2]
        failed = sum(run[k] for run in runs for k in ("bad_status", "connect", "read", "write", "timeout"))
        result = Result(
            scenario.name,
            requests / seconds,
            middle["p50_us"] / 1000,
            middle["p99_us"] / 1000,
            failed,
            scenario.per_request,
            sum(run["cpu_us"] for run in runs) / max(requests, 1),
        )
        print(
            f"  {scenario.name:<12} {result.per_second:>8,.0f} req/s  p50 {result.p50_ms:7.1f} ms  "
            f"p99 {result.p99_ms:7.1f} ms  server CPU {result.cpu_us:6.0f} µs/req"
            + (f"  FAILED {failed}" if failed else ""),
            flush=True,
        )
        return result

    def profile(self, server: Server, scenario: Scenario, label: str) -> None:
        """The scenario again, unmeasured, with py-spy sampling every worker; prints where
        the workers spend their time (own time, and time including callees)."""
        spy = Path(sys.executable).with_name("py-spy")
        self.args.profile.mkdir(parents=True, exist_ok=True)
        out = self.args.profile / f"{label}.txt"
        command = [str(spy), "record", "--pid", str(server.pid), "--subprocesses", "--format", "raw", "--rate", "50"]
        command += ["--duration", str(self.args.duration), "--output", str(out), "--nonblocking"]
        sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        self.wrk_run(server, scenario, self.args.duration - 1)
        sampler.wait(timeout=60)
        print_profile(out)


def print_profile(path: Path, top: int = 12) -> None:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        # "function (file:line)" -> "function (file)": one entry per function, not per line
        frames = [frame.rsplit(":", 1)[0] + ")" for frame in stack.split(";") if not frame.startswith("process ")]
        if not frames:
            continue
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    if not total:
        return
    print(f"    profile {path.name}: {total} samples")
    print("      own time: " + "; ".join(f"{100 * n / total:.0f}% {f}" for f, n in own.most_common(top)))
    outer = ("gunicorn/", "gateway/cli/", "<module>", "flask/app.py", "threading")
    interesting = [(f, n) for f, n in inclusive.most_common(80) if not any(o in f for o in outer)]
    print("      with callees: " + "; ".join(f"{100 * n / total:.0f}% {f}" for f, n in interesting[:top]))


def report(database: str, results: dict[str, Result]) -> None:
    """Each measured scenario against its goal (a scenario left out by --scenarios is skipped)."""
    floor = results["floor"]
    print(f"  {database} against the floor ({floor.per_second:,.0f} req/s):")
    if read := results.get("read"):
        print(
            f"    read         {read.per_second / floor.per_second:6.0%} of the floor, p99 {read.p99_ms:.1f} ms"
            f"  (goal >= 50%, p99 < 50 ms)  {verdict(read.per_second >= 0.5 * floor.per_second and read.p99_ms < 50)}"
        )
    if by_id := results.get("search-id"):
        print(
            f"    search-id    {by_id.per_second / floor.per_second:6.0%} of the floor"
            f"  (goal >= 35%)  {verdict(by_id.per_second >= 0.35 * floor.per_second)}"
        )
    if by_name := results.get("search-name"):
        print(f"    search-name  {by_name.per_second / floor.per_second:6.0%} of the floor  (no goal)")
    if create := results.get("create"):
        print(
            f"    create       {create.resources:6,.0f} resources/s  (goal >= 1,000/s)  {verdict(create.resources >= 1000)}"
        )
    if bundle := results.get("transaction"):
        print(
            f"    transaction  {bundle.resources:6,.0f} resources/s  (goal >= 2,000/s)  {verdict(bundle.resources >= 2000)}"
        )
    for name in [name for name in SECURITY_COMPARED if f"{name} open" in results]:
        secured, bare = results[name], results[f"{name} open"]
        cost = 1 - secured.per_second / bare.per_second
        added = secured.cpu_us - bare.cpu_us
        print(
            f"    security     costs {cost:6.0%} of {name}  (goal <= 15%)  {verdict(cost <= 0.15)}"
            f"  [server CPU {added:+.0f} µs/req, {added / secured.cpu_us:+.0%}]"
        )
    if any(result.failed for result in results.values()):
        print("    some requests failed: the figures above do not count")


def server_cpu_seconds(pid: int) -> float:
    """CPU (user and system, all threads) a server's master process ``pid`` and its workers
    have spent so far, from /proc: what a request costs the server itself, apart from what wrk
    and the rest of the machine take.  0 where there is no /proc."""
    if pid <= 0:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    ticks = 0
    for entry in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            fields = entry.read_text().rsplit(")", 1)[1].split()
            # fields[1] is the parent's pid, [11] and [12] the user and system ticks
            if int(entry.parent.name) == pid or int(fields[1]) == pid:
                ticks += int(fields[11]) + int(fields[12])
    return ticks / tick


def verdict(passed: bool) -> str:
    return "pass" if passed else "MISSED"


# -- stores ------------------------------------------------------------------------------------
@contextmanager
def working_store(database: str, patients: int, cache: Path, admin: str) -> Iterator[str]:
    """A throw-away copy of the cached store (the write scenarios add to it)."""
    if database == "sqlite":
        cached = cached_sqlite(patients, cache)
        with tempfile.TemporaryDirectory(prefix="yiyang-bench-store-", dir=cache) as folder:
            copy = Path(folder) / "archive.sqlite"
            shutil.copyfile(cached, copy)
            os.sync()  # the copy's gigabyte reaches the disk now, not during the first scenarios
            yield sqlite_url(copy)
        return
    if database != "postgresql":
        sys.exit(f"unknown database {database!r}: sqlite or postgresql")
    template = urlsplit(cached_postgres(patients, cache, admin)).path.lstrip("/")
    name = f"{template}_run"
    with admin_connection(admin) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        # FILE_COPY: the files are copied, not written again through the WAL
        connection.execute(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
    os.sync()  # and they reach the disk now, not during the first scenarios
    try:
        yield database_url(admin, name)
    finally:
        with admin_connection(admin) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def cached_sqlite(patients: int, cache: Path) -> Path:
    path = cache / f"sqlite-v{CACHE_VERSION}-{patients}.sqlite"
    if path.exists():
        print(f"  reusing {path}", flush=True)
        upgraded(sqlite_url(path))
        return path
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for leftover in cache.glob(partial.name + "*"):
        leftover.unlink()
    timed_load(sqlite_url(partial), patients)
    partial.rename(path)
    return path


def cached_postgres(patients: int, cache: Path, admin: str) -> str:
    """The URL of a database holding exactly the data set (loaded now unless it already does)."""
    name = f"yiyang_bench_v{CACHE_VERSION}_{patients}"
    url = database_url(admin, name)
    with admin_connection(admin) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists and resource_count(url) == 3 * patients:
        print(f"  reusing database {name}", flush=True)
        if upgraded(url):
            with admin_connection(url) as connection:
                connection.execute("VACUUM ANALYZE")
        return url
    with admin_connection(admin) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    timed_load(url, patients)
    with admin_connection(url) as connection:
        connection.execute("VACUUM ANALYZE")
    return url


def upgraded(url: str) -> bool:
    """Bring a store cached by an older gateway to the current schema, once here rather than
    in every copy a scenario serves from; whether any migration ran."""
    from gateway.storage import open_store

    store = open_store(url, upgrade=False)
    try:
        applied = store.upgrade().applied
    finally:
        store.close()
    if applied:
        print(f"    schema upgraded: migrations {', '.join(map(str, applied))}", flush=True)
    return bool(applied)


def timed_load(url: str, patients: int) -> None:
    print(f"  loading {3 * patients:,} resources into {url.split('?')[0]} (once; cached for later runs)", flush=True)
    started = time.perf_counter()
    written = server_data.load(url, patients)
    took = time.perf_counter() - started
    print(f"  loaded {written:,} resources in {took:.0f} s ({written / took:,.0f}/s)", flush=True)


def resource_count(url: str) -> int:
    import psycopg

    try:
        with admin_connection(url) as connection:
            row = connection.execute("SELECT COUNT(*) FROM resource").fetchone()
    except psycopg.Error:
        return -1
    return int(row[0]) if row else -1


@contextmanager
def admin_connection(url: str) -> Iterator[object]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        yield connection


def database_url(admin: str, name: str) -> str:
    return urlsplit(admin)._replace(path=f"/{name}").geturl()


def clean(cache: Path, admin: str) -> None:
    shutil.rmtree(cache, ignore_errors=True)
    with admin_connection(admin) as connection:
        rows = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'yiyang_bench_%'").fetchall()
        for (name,) in rows:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print(f"removed {cache} and {len(rows)} database(s)")


# -- processes ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def gateway_workers() -> list[str]:
    """gunicorn's options for the workers ``yiyang serve`` runs (``YIYANG_THREADS``, and
    gateway/cli/workers.py: their socket timeouts, a threaded worker's switch interval), so
    the floor and the open app differ from the gateway in the app alone."""
    threads = Config.load().threads
    if threads > 1:
        return ["--worker-class", "gateway.cli.workers.OutcomeThreadWorker", "--threads", str(threads)]
    return ["--worker-class", "gateway.cli.workers.OutcomeSyncWorker"]


BENCH_CLIENT, BENCH_SECRET = "bench", "bench-secret-not-for-production"


def register_client(yiyang: str, database_url: str, work: Path) -> None:
    """The benchmark's API client (an operator, every scope), registered once per store."""
    secret = work / "bench-secret"
    secret.write_text(BENCH_SECRET, encoding="utf-8")
    command = [yiyang, "client", "add", "--id", BENCH_CLIENT, "--org", "bench", "--role", "operator"]
    command += ["--scope", "system/*.cruds", "--secret-file", str(secret), "--database", database_url]
    subprocess.run(command, capture_output=True, check=False)  # a second add of the same id is refused: fine


def fetch_token(port: int) -> str:
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "system/*.cruds"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/fhir/token", data=form, method="POST")
    credentials = base64.b64encode(f"{BENCH_CLIENT}:{BENCH_SECRET}".encode()).decode()
    request.add_header("Authorization", f"Basic {credentials}")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.loads(answer.read())["access_token"])


@contextmanager
def running(
    command: list[str], port: int, ready_path: str, log: Path, environment: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, stopped gracefully (SIGTERM to it alone) when the block ends."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, cwd=HERE.parent, env={**os.environ, **(environment or {})}
        )
        try:
            wait_ready(process, f"http://127.0.0.1:{port}{ready_path}", log)
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with suppress(urllib.error.URLError, ConnectionError, TimeoutError):
            with urllib.request.urlopen(url, timeout=30) as answer:
                if answer.status == 200:
                    return
        time.sleep(0.5)
    sys.exit(f"server not ready after {seconds:.0f} s; see {log}")


if __name__ == "__main__":
    main()
