"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from alembic.script import ScriptDirectory
from flask.views import MethodView
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from backend.common.blueprint import Blueprint
from backend.db import alembic_config, get_session
from backend.errors import DomainError
from backend.replica import replica

blp = Blueprint("health", __name__, description="Probes")


class NotReady(DomainError):
    status = 503
    title = "Service Unavailable"
    slug = "not-ready"


class ReplicaSchema(ma.Schema):
    status = ma.fields.String(
        metadata={
            "description": "streaming (reads go to it), lagging (too far behind: skipped) or down (skipped)"
        }
    )
    lag_s = ma.fields.Float(allow_none=True, metadata={"description": "Seconds behind the primary"})
    max_lag_s = ma.fields.Float(metadata={"description": "Beyond this lag it is skipped"})


class HealthSchema(ma.Schema):
    status = ma.fields.String()
    migration = ma.fields.String()
    replica = ma.fields.Nested(
        ReplicaSchema,
        metadata={
            "description": "The hot standby that answers statistics, GIS, tiles and exports, when "
            "one is configured; its state never makes the service unready"
        },
    )


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@blp.route("/healthz")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """The process is up"""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, Any]:
        """The database answers and its schema is at the newest migration"""
        try:
            current: str | None = (
                get_session().execute(text("SELECT version_num FROM alembic_version")).scalar()
            )
        except ProgrammingError as error:
            raise NotReady("The database has not been migrated.") from error
        head = head_revision()
        if current is None or current != head:
            raise NotReady(f"Database schema is at {current}, the code expects {head}.")
        body: dict[str, Any] = {"status": "ready", "migration": current}
        standby = replica()
        if standby is not None:
            state = standby.state(fresh=True)
            body["replica"] = {"status": state.status, "lag_s": state.lag_s, "max_lag_s": standby.max_lag_s}
        return body
