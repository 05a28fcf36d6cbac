"""HTTP routes for the area tree and point lookup."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from backend.areas import schemas, service
from backend.areas.models import Area
from backend.auth.context import current_actor
from backend.auth.service import Forbidden
from backend.common.blueprint import Blueprint
from backend.common.pagination import decode_cursor, encode_cursor
from backend.config import settings
from backend.db import get_session
from geo.crs import to_wgs84, transform_geometry

blp = Blueprint(
    "areas",
    __name__,
    url_prefix="/api/v1",
    description="Districts, towns, villages and grids (区/镇街/村居/网格)",
)


def _may_manage(code: str) -> None:
    actor = current_actor()
    if not actor.manages_area(code):
        raise Forbidden(f"Area {code} is not yours to change.")


def area_feature(area: Area, parents: list[Area] | None = None, geometry: bool = True) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "code": area.code,
        "level": area.level,
        "name": area.name,
        "parent_code": area.parent_code,
        "kind": area.kind,
        "id": area.id,
        "valid_from": area.valid_from,
        "valid_to": area.valid_to,
    }
    if parents is not None:
        properties["parents"] = [{"code": p.code, "level": p.level, "name": p.name} for p in parents]
    return {
        "type": "Feature",
        "id": area.code,
        "geometry": area.geom if geometry else None,
        "properties": properties,
    }


def collection(areas: list[Area], limit: int, geometry: bool) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [area_feature(a, geometry=geometry) for a in areas],
        "next_cursor": encode_cursor([areas[-1].code]) if len(areas) == limit else None,
    }


def area_with_parents(code: str, geometry: bool = True) -> dict[str, Any]:
    session = get_session()
    area = service.get_area(session, code)
    found = service.get_areas(session, service.ancestor_codes(code))
    parents = [found[c] for c in service.ancestor_codes(code) if c in found]
    return area_feature(area, parents, geometry=geometry)


@blp.route("/areas")
class Areas(MethodView):
    @blp.arguments(schemas.AreaQueryArgsSchema, location="query")
    @blp.response(200, schemas.AreaCollectionSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List current areas as a GeoJSON FeatureCollection, ordered by code"""
        after = decode_cursor(args.get("cursor"), (str,))
        areas = service.list_areas(
            get_session(),
            level=args.get("level"),
            parent=args.get("parent"),
            bbox=args.get("bbox"),
            after_code=after[0] if after else None,
            limit=args["limit"],
        )
        return collection(areas, args["limit"], args["geometry"])

    @blp.arguments(schemas.AreaCreateSchema)
    @blp.response(201, schemas.AreaFeatureSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create an area under its parent (admins; supervisors inside their area)"""
        _may_manage(data["code"])
        session = get_session()
        area = service.create_area(
            session,
            service.AreaInput(
                code=data["code"],
                level=data.get("level"),
                name=data["name"],
                kind=data.get("kind"),
                geometry=transform_geometry(data["geometry"], data["crs"]),
            ),
            tolerance_m=settings().boundary_tolerance_m,
        )
        session.commit()
        return area_with_parents(area.code)


@blp.route("/areas/<string:code>")
class AreaByCode(MethodView):
    @blp.arguments(schemas.AreaArgsSchema, location="query")
    @blp.response(200, schemas.AreaFeatureSchema)
    def get(self, args: dict[str, Any], code: str) -> dict[str, Any]:
        """Get an area as a GeoJSON Feature with its parent chain"""
        return area_with_parents(code, args["geometry"])

    @blp.arguments(schemas.AreaUpdateSchema)
    @blp.response(200, schemas.AreaFeatureSchema)
    def patch(self, data: dict[str, Any], code: str) -> dict[str, Any]:
        """Rename an area or give it a new boundary (a new boundary version)"""
        _may_manage(code)
        session = get_session()
        geometry = data.get("geometry")
        service.update_area(
            session,
            code,
            name=data.get("name"),
            kind=data.get("kind"),
            geometry=transform_geometry(geometry, data["crs"]) if geometry is not None else None,
            tolerance_m=settings().boundary_tolerance_m,
        )
        session.commit()
        return area_with_parents(code)


@blp.route("/areas/<string:code>/children")
class AreaChildren(MethodView):
    @blp.arguments(schemas.ChildrenArgsSchema, location="query")
    @blp.response(200, schemas.AreaCollectionSchema)
    def get(self, args: dict[str, Any], code: str) -> dict[str, Any]:
        """List the children of an area"""
        session = get_session()
        service.get_area(session, code)
        after = decode_cursor(args.get("cursor"), (str,))
        areas = service.list_areas(
            session, parent=code, after_code=after[0] if after else None, limit=args["limit"]
        )
        return collection(areas, args["limit"], args["geometry"])


@blp.route("/lookup")
class Lookup(MethodView):
    @blp.arguments(schemas.LookupArgsSchema, location="query")
    @blp.response(200, schemas.LookupSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Find the grid (and its village, town, district) that covers a point"""
        session = get_session()
        lon, lat = to_wgs84(args["lon"], args["lat"], args["crs"])
        assignment = service.assign_point(
            session,
            lon,
            lat,
            accuracy_m=args.get("accuracy_m"),
            nearest_min_m=settings().nearest_min_m,
        )
        codes = assignment.codes
        found = service.get_areas(session, [c for c in codes.values() if c])
        return {
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "method": assignment.method,
            "distance_m": assignment.distance_m,
            "boundary_version": assignment.boundary_id,
            **{level: _ref(found.get(c)) if c else None for level, c in codes.items()},
        }


def _ref(area: Area | None) -> dict[str, str] | None:
    return {"code": area.code, "level": area.level, "name": area.name} if area else None
