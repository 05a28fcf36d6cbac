"""Create, start and hand out databases of the private PostGIS cluster under var/ (stdlib only).

Usage: python scripts/devdb.py url DBNAME [--fresh]   prints a DATABASE_URL for DBNAME
       python scripts/devdb.py stop | restart
The cluster lives under var/pg, or under WANGGE_PG_CLUSTER when set (the fault tests start their
own, to restart it under load).
PostgreSQL refuses to run as root, so as root every server command runs as the `postgres` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = Path(os.environ.get("WANGGE_PG_CLUSTER") or ROOT / "var" / "pg")
DATA = CLUSTER / "data"
PORT_FILE = CLUSTER / "port"
LOG = CLUSTER / "server.log"
BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))

SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "300",
    "shared_buffers": "'512MB'",
    "work_mem": "'32MB'",
    "maintenance_work_mem": "'256MB'",
    "effective_cache_size": "'4GB'",
    "random_page_cost": "1.1",
    "jit": "off",
    "timezone": "'UTC'",
}


def _as_owner(cmd: list[str]) -> list[str]:
    """Run server commands as postgres when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port() -> int:
    if not PORT_FILE.exists():
        CLUSTER.mkdir(parents=True, exist_ok=True)
        PORT_FILE.write_text(str(_free_port()))
    return int(PORT_FILE.read_text())


def _user() -> str:
    return "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def _init() -> None:
    if (DATA / "PG_VERSION").exists():
        return
    CLUSTER.mkdir(parents=True, exist_ok=True)
    DATA.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        # The server user must reach its data directory through every parent.
        for parent in [CLUSTER, *CLUSTER.parents]:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
        shutil.chown(CLUSTER, "postgres", "postgres")
        shutil.chown(DATA, "postgres", "postgres")
    subprocess.run(
        _as_owner(
            [
                str(BIN / "initdb"),
                "-D",
                str(DATA),
                "-U",
                _user(),
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with open(DATA / "postgresql.conf", "a") as conf:
        conf.write("\n# Wangge development cluster\n")
        for key, value in SETTINGS.items():
            conf.write(f"{key} = {value}\n")
        conf.write(f"unix_socket_directories = '{CLUSTER}'\n")


def _running() -> bool:
    result = subprocess.run(
        [str(BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(_port()), "-U", _user()], check=False
    )
    return result.returncode == 0


def start() -> int:
    """Initialise the cluster if needed and start it; return its port."""
    _init()
    port = _port()
    if _running():
        return port
    if os.geteuid() == 0:
        for path in (LOG,):
            path.touch()
            shutil.chown(path, "postgres", "postgres")
    subprocess.run(
        _as_owner(
            [
                str(BIN / "pg_ctl"),
                "-D",
                str(DATA),
                "-l",
                str(LOG),
                "-o",
                f"-p {port}",
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not _running():
        if time.monotonic() > deadline:
            sys.exit(f"PostgreSQL did not start; see {LOG}")
        time.sleep(0.2)
    return port


def stop() -> None:
    if (DATA / "PG_VERSION").exists() and _running():
        subprocess.run(
            _as_owner([str(BIN / "pg_ctl"), "-D", str(DATA), "-m", "fast", "stop"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )


def _psql(port: int, sql: str, db: str = "postgres") -> str:
    result = subprocess.run(
        [
            str(BIN / "psql"),
            "-X",
            "-q",
            "-t",
            "-A",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            _user(),
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def database_url(name: str, fresh: bool = False) -> str:
    """Return the URL of database `name`, creating it (with PostGIS) if it does not exist."""
    port = start()
    if fresh:
        _psql(port, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if not _psql(port, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
        _psql(port, f'CREATE DATABASE "{name}"')
    _psql(port, "CREATE EXTENSION IF NOT EXISTS postgis", db=name)
    return f"postgresql+psycopg://{_user()}@127.0.0.1:{port}/{name}"


def main(argv: list[str]) -> None:
    if argv[:1] == ["url"] and len(argv) >= 2:
        print(database_url(argv[1], fresh="--fresh" in argv))
    elif argv[:1] == ["stop"]:
        stop()
    elif argv[:1] == ["restart"]:
        stop()
        start()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
