"""The GeoJSON download streams: a worker's peak memory does not grow with the layer's size.

Conghua's 865 grids (the test database) and Guangzhou's 19,660 (a sibling database, built once
and kept) are downloaded through gunicorn with one worker; the growth of the worker's peak
resident set (VmHWM) during each download is compared.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from backend.auth import service as auth
from backend.config import Settings
from bench import datasets
from geo.areatree import GUANGZHOU_GRIDS
from tests.conftest import gunicorn

KIB = 1024


def _status(pid: int, field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert match, f"no {field} for {pid}"
    return int(match.group(1))


def _worker_of(base_url: str) -> int:
    """The pid of the single gunicorn worker serving `base_url` (the master's only child)."""
    bind = base_url.removeprefix("http://")
    masters, parents = set(), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int(re.search(r"^PPid:\s+(\d+)", (entry / "status").read_text(), re.M).group(1))  # type: ignore[union-attr]
        except (OSError, AttributeError):
            continue
        if bind.encode() in cmdline and any(b"gunicorn" in part for part in cmdline):
            parents[int(entry.name)] = ppid
            if ppid == os.getpid():
                masters.add(int(entry.name))
    workers = [pid for pid, ppid in parents.items() if ppid in masters]
    assert len(workers) == 1, (masters, parents)
    return workers[0]


def _reset_peak(pid: int) -> bool:
    """Set VmHWM back to the current RSS (Linux 4.0+); False where that is not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


FEATURE = b'{"type":"Feature",'


def _download(base: str, key: str, layer: str) -> int:
    features = 0
    with requests.get(
        f"{base}/api/v1/exports/{layer}.geojson", headers={"X-API-Key": key}, stream=True, timeout=300
    ) as response:
        assert response.status_code == 200
        tail = b""
        for chunk in response.iter_content(1 << 16):
            features += (tail + chunk).count(FEATURE)
            tail = chunk[1 - len(FEATURE) :]
    return features


def _growth(url: str, grids: int) -> tuple[int, int]:
    """(peak growth in KiB, size in bytes) of downloading the grid layer from `url`."""
    engine = create_engine(url)
    with Session(engine) as session:
        key, secret = auth.create_api_key(session, name="memory test", area_code="440117")
        session.commit()
    try:
        with gunicorn(url, workers=1) as base:
            worker = _worker_of(base)
            for _ in range(3):  # the same code path on a small layer: imports, pools, caches
                _download(base, secret, "towns")
            reset = _reset_peak(worker)
            before = _status(worker, "VmRSS" if reset else "VmHWM")
            assert _download(base, secret, "grids") == grids
            return _status(worker, "VmHWM") - before, reset
    finally:
        with Session(engine) as session:
            session.delete(session.merge(key))
            session.commit()
        engine.dispose()


@pytest.fixture(scope="module")
def guangzhou_url(database_url, engine) -> str:  # type: ignore[no-untyped-def]
    name = (make_url(database_url).database or "wangge_test") + "_gis"
    try:
        url = datasets.sibling_database(database_url, name)
    except DBAPIError as error:  # e.g. a role that may not create databases
        pytest.skip(f"cannot create the sibling database {name}: {error.orig}")
    datasets.guangzhou(url, Settings(database_url=url).data_dir, log=lambda *_: None)
    return url


def test_downloading_19660_grids_takes_no_more_memory_than_865(database_url, guangzhou_url):
    small, reset = _growth(database_url, 865)
    large, _ = _growth(guangzhou_url, GUANGZHOU_GRIDS)
    print(
        f"peak growth: 865 grids {small} KiB, {GUANGZHOU_GRIDS} grids {large} KiB "
        f"({'reset' if reset else 'running'} peak)"
    )
    # A buffered answer would hold the ~9 MB document and its pieces: tens of MB.
    assert large <= 1.5 * small + 4 * KIB
