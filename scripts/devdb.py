"""Create, start and hand out databases of the private PostGIS cluster under var/ (stdlib only).

Usage: python scripts/devdb.py url DBNAME [--fresh]   prints a DATABASE_URL for DBNAME
       python scripts/devdb.py replica-url DBNAME     the same database on the hot standby
       python scripts/devdb.py stop | restart | replica-stop | replica-start
The cluster lives under var/pg, or under WANGGE_PG_CLUSTER when set (the fault tests start their
own, to restart it under load). Its hot standby (streaming replication, made on first use with
pg_basebackup) lives beside it, in replica/ of the same folder, on a port of its own.
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
REPLICA = CLUSTER / "replica"
REPLICA_PORT_FILE = CLUSTER / "replica_port"
REPLICA_LOG = CLUSTER / "replica.log"
SLOT = "wangge_standby"
SLOT_WAL_KEEP = "10GB"
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


def _port(port_file: Path = PORT_FILE) -> int:
    if not port_file.exists():
        CLUSTER.mkdir(parents=True, exist_ok=True)
        port_file.write_text(str(_free_port()))
    return int(port_file.read_text())


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


def _running(port: int | None = None) -> bool:
    port = _port() if port is None else port
    result = subprocess.run(
        [str(BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", _user()], check=False
    )
    return result.returncode == 0


def _start_server(data: Path, port: int, log: Path) -> None:
    if os.geteuid() == 0:
        log.touch()
        shutil.chown(log, "postgres", "postgres")
    subprocess.run(
        _as_owner(
            [
                str(BIN / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
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
    while not _running(port):
        if time.monotonic() > deadline:
            sys.exit(f"PostgreSQL did not start; see {log}")
        time.sleep(0.2)


def start() -> int:
    """Initialise the cluster if needed and start it; return its port."""
    _init()
    port = _port()
    if not _running(port):
        _start_server(DATA, port, LOG)
    return port


def _stop_server(data: Path, port: int) -> None:
    if (data / "PG_VERSION").exists() and _running(port):
        subprocess.run(
            _as_owner([str(BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )


def stop() -> None:
    stop_replica()
    _stop_server(DATA, _port())


def start_replica() -> int:
    """Make the hot standby if needed (a base backup of the running cluster, streaming from it)
    and start it; return its port."""
    port = start()
    replica_port = _port(REPLICA_PORT_FILE)
    # The primary keeps the WAL the standby has not received (a bulk load writes gigabytes faster
    # than a busy standby takes them), up to a bound; past it the slot is lost and the standby,
    # which can no longer catch up, is made again.
    _psql(port, f"ALTER SYSTEM SET max_slot_wal_keep_size = '{SLOT_WAL_KEEP}'")
    _psql(port, "SELECT pg_reload_conf()")
    slot = _psql(port, f"SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{SLOT}'")
    if (REPLICA / "PG_VERSION").exists() and slot in ("", "lost"):
        _stop_server(REPLICA, replica_port)
        shutil.rmtree(REPLICA)
    if not (REPLICA / "PG_VERSION").exists():
        if slot:
            _psql(port, f"SELECT pg_drop_replication_slot('{SLOT}')")
        shutil.rmtree(REPLICA, ignore_errors=True)
        REPLICA.mkdir(mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(REPLICA, "postgres", "postgres")
        # -R writes standby.signal and the primary's address; -X stream copies the WAL written
        # meanwhile; -C -S makes the standby's slot. The cluster's pg_hba.conf (initdb's) lets
        # local replication in.
        subprocess.run(
            _as_owner(
                [str(BIN / "pg_basebackup"), "-D", str(REPLICA), "-h", "127.0.0.1", "-p", str(port)]
                + ["-U", _user(), "-X", "stream", "-R", "-c", "fast", "-C", "-S", SLOT]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(REPLICA / "postgresql.conf", "a") as conf:
            # Long statistics queries on the standby are not cancelled by the WAL it replays.
            conf.write("hot_standby_feedback = on\n")
    if not _running(replica_port):
        _start_server(REPLICA, replica_port, REPLICA_LOG)
    return replica_port


def stop_replica() -> None:
    if REPLICA_PORT_FILE.exists():
        _stop_server(REPLICA, _port(REPLICA_PORT_FILE))


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


def replica_url(name: str) -> str:
    """Return the URL of database `name` on the hot standby, once it has replayed its creation."""
    database_url(name)
    port = start_replica()
    deadline = time.monotonic() + 60
    while True:
        try:
            if _psql(port, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
                break
        except subprocess.CalledProcessError:
            pass  # still starting up
        if time.monotonic() > deadline:
            sys.exit(f"The standby did not catch up; see {REPLICA_LOG}")
        time.sleep(0.2)
    return f"postgresql+psycopg://{_user()}@127.0.0.1:{port}/{name}"


def main(argv: list[str]) -> None:
    if argv[:1] == ["url"] and len(argv) >= 2:
        print(database_url(argv[1], fresh="--fresh" in argv))
    elif argv[:1] == ["replica-url"] and len(argv) >= 2:
        print(replica_url(argv[1]))
    elif argv[:1] == ["replica-stop"]:
        stop_replica()
    elif argv[:1] == ["replica-start"]:
        start_replica()
    elif argv[:1] == ["stop"]:
        stop()
    elif argv[:1] == ["restart"]:
        stop()
        start()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
