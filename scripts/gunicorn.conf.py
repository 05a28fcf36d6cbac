"""gunicorn's settings for `make run` and the tests: metrics across workers, housekeeping beside them.

- Metrics: every worker writes its own files in PROMETHEUS_MULTIPROC_DIR and a scrape adds them
  up (prometheus_client's multiprocess mode). The variable must be set before the app, and so
  prometheus_client, is imported (--preload imports it right after reading this file), and the
  directory must start empty: a fresh temporary one per server start, or the given one emptied.
  A worker that exits takes its live gauges (pool connections in use) with it: child_exit.
- Warm pools: a worker opens its threads' database connections as it starts, not on its first
  requests (a new connection and its PostGIS types cost a page's first load tens of milliseconds).
- Housekeeping: `flask housekeeping --loop` runs beside the workers, started when the server is
  ready and stopped when it exits; it sweeps every WANGGE_HOUSEKEEPING_EVERY_S (0: never).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_MADE_BY = "WANGGE_METRICS_DIR_MADE_BY"
_TEMPORARY = "WANGGE_METRICS_DIR_TEMPORARY"


def _metrics_dir() -> None:
    # This file is read again on every HUP; the directory belongs to the first reading.
    if os.environ.get(_MADE_BY) == str(os.getpid()):
        return
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given and not os.environ.get(_TEMPORARY):
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="wangge-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
        os.environ[_TEMPORARY] = "1"
    os.environ[_MADE_BY] = str(os.getpid())


_metrics_dir()


def when_ready(server):  # type: ignore[no-untyped-def]
    hidden = ("PROMETHEUS_MULTIPROC_DIR", _MADE_BY, _TEMPORARY)
    env = {key: value for key, value in os.environ.items() if key not in hidden}
    # On the arbiter, which outlives the re-readings of this file.
    server.wangge_housekeeping = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "backend", "housekeeping", "--loop"],
        env=env,
        stdin=subprocess.DEVNULL,
    )


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    from backend.db import warm_pool

    warm_pool(worker.wsgi, worker.cfg.threads)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):  # type: ignore[no-untyped-def]
    housekeeping = getattr(server, "wangge_housekeeping", None)
    if housekeeping is not None and housekeeping.poll() is None:
        housekeeping.terminate()
        try:
            housekeeping.wait(timeout=10)
        except subprocess.TimeoutExpired:
            housekeeping.kill()
    if os.environ.get(_TEMPORARY):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
