"""Wangge (网格): the backend of grid-based community governance."""

from __future__ import annotations

import gc

import flask
from sqlalchemy.orm import sessionmaker
from werkzeug.routing import IntegerConverter

from backend import config as config_module
from backend import cors, db, replica
from backend.common.json_provider import OrjsonProvider


class BigIntConverter(IntegerConverter):
    """Integer path parts that fit a PostgreSQL bigint; anything larger is a plain 404."""

    def __init__(self, map, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(
    settings: config_module.Settings | None = None,
    session_factory: sessionmaker | None = None,  # type: ignore[type-arg]
) -> flask.Flask:
    """Build the app: engine, session factory, GIS layers, Api and blueprints. Nothing happens at import."""
    from backend import load
    from backend.api import make_api, register_blueprints, register_operator_routes
    from backend.cli import register_commands
    from backend.events.lifecycle import ACTIONS
    from backend.gis import layers
    from backend.ops import metrics, requestlog

    settings = settings or config_module.from_environ()
    app = flask.Flask(__name__)
    app.url_map.converters["int"] = BigIntConverter
    app.config["SETTINGS"] = settings
    # Photos are the largest bodies; anything bigger is refused with 413 before it is read.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_photo_bytes + 256 * 1024
    app.json = OrjsonProvider(app)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if session_factory is None:
        engine = db.make_engine(
            settings.database_url, settings.pool_size, settings.statement_timeout_ms, settings.lock_timeout_ms
        )
        metrics.watch_pool(engine, limit=2 * settings.pool_size)  # the pool's size plus its overflow
        session_factory = sessionmaker(engine, expire_on_commit=False)
    db.init_app(app, session_factory)
    # The standby answers the expensive reads: it gets their statement timeout.
    replica.init_app(
        app,
        settings.replica_url,
        max_lag_s=settings.replica_max_lag_s,
        pool_size=settings.pool_size,
        statement_timeout_ms=settings.expensive_timeout_ms,
    )
    layers.register_all()
    api = make_api(app)
    register_blueprints(api)
    register_operator_routes(app)
    metrics.init_labels(ACTIONS)
    from backend.auth.context import authenticate_request

    # First, so that the request's time and log line include signing in.
    requestlog.init_app(app)
    # Preflights before signing in: browsers send them without credentials.
    cors.init_app(app)
    app.before_request(authenticate_request)
    load.init_app(app)
    register_commands(app)
    return app


def settle_heap() -> None:
    """Take what start-up built (modules, mappers, schemas, the app) out of the garbage
    collector's sight: its full collections then walk only what requests made. Without this,
    every few statistics answers of a few thousand groups pay a 40-60 ms collection.
    Under gunicorn --preload the workers inherit the frozen heap (and share its pages)."""
    gc.collect()
    gc.freeze()
