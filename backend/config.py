"""Settings, read from the environment here and nowhere else."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import flask

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path = ROOT.parent / "shared" / "data"
    media_dir: Path = ROOT / "var" / "media"
    secret_key: str = "dev-only-secret-set-SECRET_KEY-in-production"
    # Nearest-grid fallback radius: max(GPS accuracy, this many metres).
    nearest_min_m: float = 50.0
    # A child area may stick out of its parent by this much (metres) before it is rejected.
    boundary_tolerance_m: float = 1.0
    pool_size: int = 10
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    # Argon2id cost; tests lower it, production keeps the library's memory-hard defaults.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    # Login attempts per window, per username and per client address.
    login_window_s: int = 300
    login_limit_per_user: int = 10
    login_limit_per_address: int = 30
    # Residents' reports through Open311: per registered app and per client address, per window.
    open311_window_s: int = 3600
    open311_limit_per_app: int = 5000
    open311_limit_per_address: int = 20
    # redis://host:port/db to keep rate-limit counters in Redis; None keeps them in PostgreSQL.
    ratelimit_redis_url: str | None = None
    max_photo_bytes: int = 10 * 1024 * 1024
    max_photos_per_event: int = 9
    # Serve the area collections and tiles of /ogc and /tiles to callers without credentials.
    ogc_anonymous_areas: bool = False
    # Origins whose browser pages may call the API (WANGGE_CORS_ORIGINS, comma-separated; "*"
    # for any); none by default.
    cors_origins: tuple[str, ...] = ()
    # A raster basemap under the supervisors' page (WANGGE_BASEMAP_URL, a tile URL template with
    # {z}, {x} and {y}, e.g. Tianditu's or AMap's), the frame its tiles are drawn in
    # (WANGGE_BASEMAP_CRS: wgs84, or gcj02 for AMap: the page then asks for its data shifted to
    # match) and its credit (WANGGE_BASEMAP_ATTRIBUTION). None by default: nothing is fetched
    # from outside the app.
    basemap_url: str = ""
    basemap_crs: str = "wgs84"
    basemap_attribution: str = ""
    # Statement and lock timeouts of ordinary requests; commands run unbounded.
    statement_timeout_ms: int = 15_000
    lock_timeout_ms: int = 5_000
    # Expensive requests (statistics, downloads): slots per process, seconds to wait for one
    # (a waiting request holds a thread that a report could use: by default none waits), at most
    # this many at a time per caller, and their own statement timeout.
    expensive_slots: int = 2
    expensive_wait_s: float = 0.0
    expensive_per_caller: int = 2
    expensive_timeout_ms: int = 60_000
    # PostgreSQL 15's client programs, for backups (pg_dump, pg_restore).
    pg_bin: Path = Path("/usr/lib/postgresql/15/bin")
    # Housekeeping: how often the server sweeps (0: never), and what it keeps.
    housekeeping_every_s: int = 3600
    # Login attempt counters, after their window ended (only the current window counts).
    keep_login_attempts_hours: int = 24
    # Refresh tokens, after they expired or were revoked (neither works again).
    keep_refresh_tokens_days: int = 7
    # A phone's sync cursors: none older than this, and at most this many per user.
    keep_sync_states_days: int = 30
    keep_sync_states_per_user: int = 10
    # Patrols: an open patrol the server has not heard of for this long is closed; raw track
    # batches are kept this many days (and until their day's figures exist); at most this many
    # points in a batch.
    patrol_idle_minutes: int = 60
    patrol_keep_days: int = 30
    patrol_max_points: int = 1000
    # A hot standby for statistics, GIS, tiles and exports (DATABASE_REPLICA_URL; none by
    # default), skipped while it is down or more than this many seconds behind.
    replica_url: str | None = None
    replica_max_lag_s: float = 30.0


def settings() -> Settings:
    """The settings of the app handling this request or command."""
    value: Settings = flask.current_app.config["SETTINGS"]
    return value


def from_environ(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from environment variables."""
    env = os.environ if environ is None else environ
    url = env.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is not set (make run sets it up for you)")
    defaults = Settings(database_url=url)
    return Settings(
        database_url=_driver_url(url),
        data_dir=Path(env.get("WANGGE_DATA_DIR", defaults.data_dir)),
        media_dir=Path(env.get("MEDIA_DIR", defaults.media_dir)),
        secret_key=env.get("SECRET_KEY", defaults.secret_key),
        nearest_min_m=float(env.get("WANGGE_NEAREST_MIN_M", defaults.nearest_min_m)),
        pool_size=int(env.get("WANGGE_POOL_SIZE", defaults.pool_size)),
        access_token_minutes=int(env.get("WANGGE_ACCESS_TOKEN_MINUTES", defaults.access_token_minutes)),
        argon2_time_cost=int(env.get("WANGGE_ARGON2_TIME_COST", defaults.argon2_time_cost)),
        argon2_memory_kib=int(env.get("WANGGE_ARGON2_MEMORY_KIB", defaults.argon2_memory_kib)),
        login_window_s=int(env.get("WANGGE_LOGIN_WINDOW_S", defaults.login_window_s)),
        login_limit_per_user=int(env.get("WANGGE_LOGIN_LIMIT_PER_USER", defaults.login_limit_per_user)),
        login_limit_per_address=int(
            env.get("WANGGE_LOGIN_LIMIT_PER_ADDRESS", defaults.login_limit_per_address)
        ),
        open311_window_s=int(env.get("WANGGE_OPEN311_WINDOW_S", defaults.open311_window_s)),
        open311_limit_per_app=int(env.get("WANGGE_OPEN311_LIMIT_PER_APP", defaults.open311_limit_per_app)),
        open311_limit_per_address=int(
            env.get("WANGGE_OPEN311_LIMIT_PER_ADDRESS", defaults.open311_limit_per_address)
        ),
        ratelimit_redis_url=env.get("RATELIMIT_REDIS_URL") or None,
        max_photo_bytes=int(env.get("WANGGE_MAX_PHOTO_BYTES", defaults.max_photo_bytes)),
        max_photos_per_event=int(env.get("WANGGE_MAX_PHOTOS", defaults.max_photos_per_event)),
        ogc_anonymous_areas=_flag(env.get("WANGGE_OGC_ANONYMOUS_AREAS")),
        cors_origins=tuple(o.strip() for o in env.get("WANGGE_CORS_ORIGINS", "").split(",") if o.strip()),
        basemap_url=_basemap_url(env.get("WANGGE_BASEMAP_URL", "")),
        basemap_crs=_one_of("WANGGE_BASEMAP_CRS", env.get("WANGGE_BASEMAP_CRS", "wgs84"), BASEMAP_CRS),
        basemap_attribution=env.get("WANGGE_BASEMAP_ATTRIBUTION", ""),
        statement_timeout_ms=int(env.get("WANGGE_STATEMENT_TIMEOUT_MS", defaults.statement_timeout_ms)),
        lock_timeout_ms=int(env.get("WANGGE_LOCK_TIMEOUT_MS", defaults.lock_timeout_ms)),
        expensive_slots=int(env.get("WANGGE_EXPENSIVE_SLOTS", defaults.expensive_slots)),
        expensive_wait_s=float(env.get("WANGGE_EXPENSIVE_WAIT_S", defaults.expensive_wait_s)),
        expensive_per_caller=int(env.get("WANGGE_EXPENSIVE_PER_CALLER", defaults.expensive_per_caller)),
        expensive_timeout_ms=int(env.get("WANGGE_EXPENSIVE_TIMEOUT_MS", defaults.expensive_timeout_ms)),
        pg_bin=Path(env.get("PG_BIN", defaults.pg_bin)),
        housekeeping_every_s=int(env.get("WANGGE_HOUSEKEEPING_EVERY_S", defaults.housekeeping_every_s)),
        keep_login_attempts_hours=int(
            env.get("WANGGE_KEEP_LOGIN_ATTEMPTS_HOURS", defaults.keep_login_attempts_hours)
        ),
        keep_refresh_tokens_days=int(
            env.get("WANGGE_KEEP_REFRESH_TOKENS_DAYS", defaults.keep_refresh_tokens_days)
        ),
        keep_sync_states_days=int(env.get("WANGGE_KEEP_SYNC_STATES_DAYS", defaults.keep_sync_states_days)),
        keep_sync_states_per_user=int(
            env.get("WANGGE_KEEP_SYNC_STATES_PER_USER", defaults.keep_sync_states_per_user)
        ),
        patrol_idle_minutes=int(env.get("WANGGE_PATROL_IDLE_MINUTES", defaults.patrol_idle_minutes)),
        patrol_keep_days=int(env.get("WANGGE_PATROL_KEEP_DAYS", defaults.patrol_keep_days)),
        patrol_max_points=int(env.get("WANGGE_PATROL_MAX_POINTS", defaults.patrol_max_points)),
        replica_url=_driver_url(env["DATABASE_REPLICA_URL"]) if env.get("DATABASE_REPLICA_URL") else None,
        replica_max_lag_s=float(env.get("WANGGE_REPLICA_MAX_LAG_S", defaults.replica_max_lag_s)),
    )


BASEMAP_CRS = ("wgs84", "gcj02")


def _basemap_url(value: str) -> str:
    """A tile URL template on http(s) with {z}, {x} and {y}, or empty for no basemap."""
    value = value.strip()
    if value and (
        urlsplit(value).scheme not in ("http", "https")
        or not urlsplit(value).netloc
        or not all(part in value for part in ("{z}", "{x}", "{y}"))
    ):
        raise ValueError(f"WANGGE_BASEMAP_URL must be an http(s) URL with {{z}}, {{x}} and {{y}}: {value!r}")
    return value


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    value = value.strip().lower()
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}: {value!r}")
    return value


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _driver_url(url: str) -> str:
    """Make plain postgresql:// URLs use psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
