"""Shared benchmark helpers: the bench database, timing, tables, and the app under gunicorn."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from playwright.sync_api import Browser, Playwright
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session

from backend.db import alembic_config

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE = "wangge_bench"
GUANGZHOU_GRIDS = 19_660


# --- timing and tables ------------------------------------------------------------------------


class Stopwatch:
    """Time a block: `with Stopwatch() as watch: ...; watch.seconds`."""

    def __init__(self) -> None:
        self.started = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain-text table: text columns left-aligned, numbers right-aligned."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) for row in rows) if rows else False for i in range(len(headers))
    ]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def log(message: str) -> None:
    print(message, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-quantile (0 <= q <= 1) of the values."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))]


def machine() -> str:
    """CPUs and load, so a reader can tell a busy machine's numbers from a quiet one's."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.2f} (1 min), {five:.2f} (5 min)"


# --- the bench database -----------------------------------------------------------------------


def database_url(name: str, variable: str | None = None, fresh: bool = False) -> str:
    """The database in the environment variable `variable` when set, else the private cluster's
    database `name` (created if missing; emptied first with `fresh`)."""
    from backend.config import _driver_url

    given = os.environ.get(variable) if variable else None
    if given:
        if fresh:
            raise SystemExit(f"{variable} holds other data; give an empty database.")
        return _driver_url(given)
    args = [sys.executable, str(ROOT / "scripts" / "devdb.py"), "url", name]
    result = subprocess.run(args + (["--fresh"] if fresh else []), check=True, capture_output=True, text=True)
    return _driver_url(result.stdout.strip())


def bench_database_url() -> str:
    """BENCH_DATABASE_URL, else the `wangge_bench` database of the private cluster."""
    return database_url(BENCH_DATABASE, "BENCH_DATABASE_URL")


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL in the form psycopg.connect takes."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass(frozen=True)
class Tree:
    """What the bench database holds."""

    grids: int
    real_outlines: bool
    built_seconds: float | None  # None when an existing tree was reused


def _count_grids(engine: Engine) -> int:
    with engine.connect() as conn:
        count = conn.scalar(text("SELECT count(*) FROM areas WHERE level = 'grid' AND valid_to IS NULL"))
    return int(count or 0)


def _count_areas(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT count(*) FROM areas")) or 0)


def _holds_real_outlines(engine: Engine, data_dir: Path) -> bool:
    """Whether the stored districts are the public outlines (same vertices), not synthetic ones."""
    import shapely

    from backend import demo
    from geo import areatree

    path = data_dir / demo.GUANGZHOU_OUTLINES
    if not path.exists():
        return False
    expected = {
        code: int(shapely.get_num_coordinates(geom)) for code, _, geom in areatree.read_outline_geojson(path)
    }
    with engine.connect() as conn:
        stored: dict[str, int] = dict(
            conn.execute(
                text("SELECT code, ST_NPoints(geom) FROM areas WHERE level = 'district' AND valid_to IS NULL")
            ).all()
        )
    return stored == expected


def prepare_bench_database(url: str) -> Tree:
    """Migrate to head; load the Guangzhou-scale tree unless it is already there."""
    from backend import demo
    from backend.config import Settings

    data_dir = Settings(database_url=url).data_dir
    want_real = (data_dir / demo.GUANGZHOU_OUTLINES).exists()
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    try:
        grids = _count_grids(engine)
        if grids == GUANGZHOU_GRIDS and _holds_real_outlines(engine, data_dir) == want_real:
            built = None
        else:
            if _count_areas(engine):
                engine.dispose()
                url = _recreate(url, grids)
                engine = create_engine(url)
                command.upgrade(alembic_config(url), "head")
            with Stopwatch() as watch, Session(engine) as session:
                demo.load_areas(session, demo.guangzhou_specs(data_dir))
                session.commit()
            built = watch.seconds
            grids = _count_grids(engine)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        return Tree(grids, _holds_real_outlines(engine, data_dir), built)
    finally:
        engine.dispose()


def _recreate(url: str, grids: int) -> str:
    """Drop and recreate the bench database; only the private cluster's one is ours to drop."""
    if os.environ.get("BENCH_DATABASE_URL"):
        raise SystemExit(
            f"BENCH_DATABASE_URL holds another area tree ({grids:,} grids, not "
            f"{GUANGZHOU_GRIDS:,} from the current data); point it at an empty database."
        )
    log(f"The bench database holds another tree ({grids:,} grids); rebuilding it.")
    return database_url(BENCH_DATABASE, fresh=True)


BENCH_USER = "bench-admin"
BENCH_PASSWORD = "bench-only-password"  # a throwaway account in the bench database only


def bench_access_token(url: str) -> str:
    """A fresh access token of the bench admin (created on first use) for the app on `url`."""
    from backend import config
    from backend.auth import service as auth
    from backend.auth.models import User

    # The settings gunicorn will build, so the token is signed with the key it checks.
    settings = config.from_environ({**os.environ, "DATABASE_URL": url})
    engine = create_engine(url)
    try:
        with Session(engine) as session, warnings.catch_warnings():
            # The development secret is short; PyJWT says so on every token.
            warnings.filterwarnings("ignore", message="The HMAC key")
            if session.scalar(select(User.id).where(User.username == BENCH_USER)) is None:
                auth.create_user(
                    session,
                    settings,
                    username=BENCH_USER,
                    password=BENCH_PASSWORD,
                    display_name="Benchmark",
                    role="admin",
                )
            pair = auth.login(session, settings, BENCH_USER, BENCH_PASSWORD)
            session.commit()
    finally:
        engine.dispose()
    return pair.access_token


# --- Debian's chromium, for the page ------------------------------------------------------------

# Playwright drives the chromium Debian installs (scripts/bootstrap.sh); its own browsers are
# never downloaded. Headless, and quiet: it calls nowhere by itself.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def launch_chromium(driver: Playwright) -> Browser:
    """Debian's chromium, from a started Playwright."""
    return driver.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))


# --- the app under gunicorn -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@dataclass(frozen=True)
class Server:
    port: int
    log_path: Path
    pid: int

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def last_error(self) -> str | None:
        """The last exception line the workers logged (`module.SomeError: message`)."""
        found = None
        for line in self.log_path.read_text(errors="replace").splitlines():
            if re.match(r"^[\w.]*(Error|Exception|Warning)\b.*:", line):
                found = line
        return found


@contextmanager
def gunicorn(url: str, options: str, pool_size: int = 4) -> Iterator[Server]:
    """Run `backend.wsgi:app` under gunicorn with these options on a free loopback port."""
    port = free_port()
    # Housekeeping (run beside the workers under scripts/gunicorn.conf.py) stays out of the timings.
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WANGGE_POOL_SIZE": str(pool_size),
        "WANGGE_HOUSEKEEPING_EVERY_S": "0",
    }
    # A file, not a pipe: nobody reads a pipe while the load runs, and a full one blocks workers.
    with tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log") as log_file:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "-b",
                f"127.0.0.1:{port}",
                *shlex.split(options),
                "--log-level",
                "warning",
                "backend.wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        server = Server(port, Path(log_file.name), process.pid)
        try:
            deadline = time.monotonic() + 30
            while not _healthy(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start: " + server.log_tail())
                time.sleep(0.1)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- CPU accounting (Linux /proc) ---------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        text_ = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text_.rsplit(")", 1)[1].split()  # fields from the state on; comm may hold spaces


def process_cpu(pids: Sequence[int]) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each of these processes that still exists."""
    out = {}
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            out[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return out


def with_children(pid: int) -> list[int]:
    """The process and its direct children (a gunicorn master and its workers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                children.append(int(entry.name))
    return [pid, *children]


def cluster_cpu(conn: psycopg.Connection[Any]) -> dict[int, float]:
    """CPU seconds so far of every process of the database cluster behind `conn` (the children
    of its postmaster): backends that live on in a connection pool keep their count."""
    backend = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert backend is not None
    fields = _stat(int(backend[0]))
    assert fields is not None
    return process_cpu(with_children(int(fields[1])))


# Returns, per group name, CPU seconds so far per process id.
CpuProbe = Callable[[], dict[str, dict[int, float]]]


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds each group used between two probes (processes born in between count whole)."""
    return {
        group: sum(t - before.get(group, {}).get(pid, 0.0) for pid, t in pids.items())
        for group, pids in after.items()
    }


def server_cpu_probe(conn: psycopg.Connection[Any], server: Server) -> CpuProbe:
    """CPU of the gunicorn master and workers, and of the database backends serving them."""

    def probe() -> dict[str, dict[int, float]]:
        backends = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
        return {"app": process_cpu(with_children(server.pid)), "postgres": process_cpu(backends)}

    return probe


# --- an HTTP load driver ----------------------------------------------------------------------

# Builds request number i: (method, path, JSON body or None).
RequestMaker = Callable[[int], tuple[str, str, object]]


@dataclass
class LoadResult:
    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    client_cpu_seconds: float = 0.0
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # from the CpuProbe, if any

    def count(self, status: int) -> int:
        return self.statuses[status]

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q) if self.latencies else float("nan")

    def summary(self) -> str:
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(self.statuses.items()))
        errors = ", ".join(f"{e}: {n:,}" for e, n in self.errors.most_common()) or "none"
        return (
            f"statuses {{{statuses}}}, connection errors {errors}; latency p50 "
            f"{self.percentile(0.5) * 1000:.1f} ms, p95 {self.percentile(0.95) * 1000:.1f} ms; "
            f"client CPU {self.client_cpu_seconds / self.seconds:.0%} of one core"
        )


def drive_http(
    port: int,
    make: RequestMaker,
    *,
    seconds: float,
    warmup: float,
    concurrency: int,
    headers: dict[str, str] | None = None,
    cpu_probe: CpuProbe | None = None,
) -> LoadResult:
    """Send requests from `concurrency` keep-alive connections; count what finishes in the window.

    Requests finishing during the warm-up are not counted; none are started after the window.
    `cpu_probe`, called at both ends of the window, tells what the server side used.
    """
    numbers = itertools.count()  # next() on it is atomic under the GIL
    start = time.perf_counter() + warmup
    end = start + seconds
    result = LoadResult(seconds)
    lock = threading.Lock()
    headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}

    def worker() -> None:
        statuses: Counter[int] = Counter()
        errors: Counter[str] = Counter()
        latencies: list[float] = []
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (began := time.perf_counter()) < end:
            method, path, body = make(next(numbers))
            payload = json.dumps(body).encode() if body is not None else None
            try:
                conn.request(method, path, payload, headers)
                response = conn.getresponse()
                response.read()
                status: int | None = response.status
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                status, name = None, type(error).__name__
            finished = time.perf_counter()
            if finished < start or finished > end:
                continue
            if status is None:
                errors[name] += 1
            else:
                statuses[status] += 1
                latencies.append(finished - began)
        conn.close()
        with lock:
            result.statuses.update(statuses)
            result.errors.update(errors)
            result.latencies.extend(latencies)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, start - time.perf_counter()))
    cpu_before = time.process_time()
    probed = cpu_probe() if cpu_probe else {}
    time.sleep(max(0.0, end - time.perf_counter()))
    result.client_cpu_seconds = time.process_time() - cpu_before
    if cpu_probe:
        result.cpu_seconds = cpu_used(probed, cpu_probe())
    for thread in threads:
        thread.join()
    return result
