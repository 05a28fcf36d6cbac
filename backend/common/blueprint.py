"""The Blueprint every routes module builds on; a leaf, so routes never import the Api."""

from __future__ import annotations

from typing import Any

import flask_smorest


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, parsing arguments with one schema instance per route.

    Given a schema class, webargs builds an instance for every request, and building one
    (copying its declared fields) costs more than loading a report with it.
    """

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)
