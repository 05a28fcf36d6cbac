"""The Blueprint every routes module builds on; a leaf, so routes never import the Api."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.datastructures import CombinedMultiDict

from backend.common.json_provider import BadJson, loads_body
from backend.errors import PROBLEM_JSON, ProblemSchema


class Parser(FlaskParser):
    """webargs' Flask parser, reading JSON bodies with loads_body (strict, depth-limited), and
    multipart bodies, files and fields alike, as one location: "multipart"."""

    __location_map__ = {**FlaskParser.__location_map__, "multipart": "load_multipart"}

    def load_multipart(self, req: flask.Request, schema: Any) -> Any:
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)

    def load_json(self, req: flask.Request, schema: Any) -> Any:
        data = req.get_data(cache=True) if is_json_request(req) else b""
        if not data.strip():
            if req.method == "PATCH":
                # A PATCH says what to change; without a body it would change nothing and succeed.
                abort(400, messages={"json": ["Send a JSON body (Content-Type: application/json)."]})
            return core.missing
        try:
            return loads_body(data)
        except BadJson as error:
            abort(400, exc=error, messages={"json": [f"Invalid JSON body: {error.msg}."]})


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, parsing arguments with one schema instance per route.

    Given a schema class, webargs builds an instance for every request, and building one
    (copying its declared fields) costs more than loading a report with it.
    """

    ARGUMENTS_PARSER = Parser()
    # One schema for a multipart body's files and fields documents them all in its requestBody.
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "multipart": "multipart/form-data",
    }

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)

    def problem(self, status: int, description: str) -> Any:
        """Document an error answer of the route: problem+json, and when it is sent."""
        return self.alt_response(
            status, schema=ProblemSchema, content_type=PROBLEM_JSON, description=description
        )
