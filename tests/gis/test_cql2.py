"""CQL2 text filters on /ogc items: the parser alone, then through the API with the GIS key."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from backend.gis import cql2, registry
from backend.gis.ogc import CONFORMANCE
from backend.gis.params import EPSG_4326

EVENTS = "/ogc/collections/events/items"


# --- the parser, without a database ---------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "position", "words"),
    [
        ("status = ", 10, "Expected a property or a value"),
        ("status = 'closed", 10, "not closed"),
        ("(status = 'closed'", 19, "Expected ')'"),
        ("status == 'closed'", 9, "Expected a property or a value"),
        ("status = 'a' AND", 17, "Expected a property or a value"),
        ("status NOT 'a'", 12, "Expected LIKE, BETWEEN or IN"),
        ("status IS 'a'", 11, "Expected NULL"),
        ("status = 'a' status = 'b'", 14, "Expected AND, OR or the end"),
        ("S_CROSSES(geometry, POINT(1 2))", 1, "S_INTERSECTS"),
        ("S_INTERSECTS(geometry, BBOX(1, 2, 3))", 24, "BBOX takes 4 or 6 numbers"),
        ("S_INTERSECTS(geometry, POINT(1 2)", 34, "Expected ')'"),
        ("S_INTERSECTS(geometry, POLYGON((0 0, 1 1)))", 24, "WKT"),
        ("received_at > TIMESTAMP('yesterday')", 25, "RFC 3339"),
        ("status = 'a' ; DROP TABLE events", 14, "Unexpected character"),
    ],
)
def test_bad_filters_name_the_position(source: str, position: int, words: str) -> None:
    with pytest.raises(cql2.FilterError) as caught:
        cql2.parse(source)
    assert caught.value.position == position, str(caught.value)
    assert words in str(caught.value)


def test_precedence_not_binds_tightest_then_and_then_or() -> None:
    tree = cql2.parse("NOT a = 1 AND b = 2 OR c = 3").tree
    assert isinstance(tree, cql2.Logical) and tree.op == "OR"
    first = tree.parts[0]
    assert isinstance(first, cql2.Logical) and first.op == "AND"
    assert isinstance(first.parts[0], cql2.Not)
    grouped = cql2.parse("NOT (a = 1 AND (b = 2 OR c = 3))").tree
    assert isinstance(grouped, cql2.Not) and isinstance(grouped.part, cql2.Logical)


def test_literals_keywords_and_quoting() -> None:
    tree = cql2.parse("\"name\" = 'it''s' and x in (1, -2.5, 3e2) or y is not null").tree
    assert isinstance(tree, cql2.Logical)
    compare = tree.parts[0].parts[0]  # type: ignore[attr-defined]
    assert compare.left == cql2.PropertyRef(0, "name") and compare.right.value == "it's"
    listed = tree.parts[0].parts[1]  # type: ignore[attr-defined]
    assert [item.value for item in listed.items] == [1, -2.5, 300.0]
    deep = "(" * 50 + "a = 1" + ")" * 50
    with pytest.raises(cql2.FilterError, match="deeper"):
        cql2.parse(deep)


def test_unknown_and_personal_properties_are_refused() -> None:
    events = registry.get("events")
    assert events is not None
    for name in ("reporter_id", "contacts", "assignee_id"):
        with pytest.raises(cql2.FilterError, match=f"no queryable '{name}'") as caught:
            cql2.check(cql2.parse(f"status = 'closed' AND {name} IS NULL"), events)
        assert caught.value.position == 23
    with pytest.raises(cql2.FilterError, match="Expected a number"):
        cql2.check(cql2.parse("accuracy_m > 'far'"), events)
    with pytest.raises(cql2.FilterError, match="LIKE takes a text property"):
        cql2.check(cql2.parse("rework_count LIKE '1%'"), events)


# --- through the API ------------------------------------------------------------------------


def ids(client, cql: str, **more: str) -> set[str]:  # type: ignore[no-untyped-def]
    query = "&".join([f"filter={quote(cql)}", *(f"{k}={quote(v)}" for k, v in more.items())])
    response = client.get(f"{EVENTS}?limit=10000&{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return {f["id"] for f in response.json["features"]}


def test_comparisons_like_between_in_and_null_select_events(gis, session, reports):
    session.execute(
        text("UPDATE events SET accuracy_m = 12.5, status = 'accepted' WHERE id = :id"), {"id": reports.plain}
    )
    session.commit()
    plain, sensitive = reports.plain, reports.sensitive
    assert plain in ids(gis, "accuracy_m = 12.5") and sensitive not in ids(gis, "accuracy_m = 12.5")
    assert plain in ids(gis, "accuracy_m BETWEEN 12 AND 13")
    assert plain not in ids(gis, "accuracy_m NOT BETWEEN 12 AND 13")
    assert plain in ids(gis, "accuracy_m > 12 AND accuracy_m <= 12.5")
    assert plain not in ids(gis, "accuracy_m <> 12.5")
    assert {plain, sensitive} <= ids(gis, "category IN ('environment', 'dispute')")
    assert plain in ids(gis, "status = 'accepted'") and sensitive not in ids(gis, "status = 'accepted'")
    assert sensitive in ids(gis, "NOT (status = 'accepted')")
    assert plain in ids(gis, "category = 'environment' OR category = 'dispute'")
    assert plain in ids(gis, "description LIKE 'plain%'")
    assert plain not in ids(gis, "description NOT LIKE 'plain%'")
    assert {plain, sensitive} <= ids(gis, "closed_at IS NULL")
    assert not {plain, sensitive} & ids(gis, "closed_at IS NOT NULL")
    assert plain in ids(gis, f"id = '{plain}'") and len(ids(gis, f"id = '{plain}'")) == 1
    # Date-times as CQL2 literals or as the quoted text GDAL 3.6 writes.
    assert plain in ids(gis, "received_at >= TIMESTAMP('2000-01-01T00:00:00Z')")
    assert plain in ids(gis, "received_at > '2000-01-01T00:00:00Z'")
    assert plain not in ids(gis, "received_at < DATE('2000-01-02')")


def test_spatial_filters_with_a_bbox_or_wkt_in_either_axis_order(gis, session, reports):
    lon, lat = session.execute(
        text("SELECT ST_X(location), ST_Y(location) FROM events WHERE id = :id"), {"id": reports.plain}
    ).one()
    box = f"BBOX({lon - 0.001}, {lat - 0.001}, {lon + 0.001}, {lat + 0.001})"
    assert reports.plain in ids(gis, f"S_INTERSECTS(geometry, {box})")
    far = f"BBOX({lon + 1}, {lat + 1}, {lon + 2}, {lat + 2})"
    assert reports.plain not in ids(gis, f"S_INTERSECTS(geometry, {far})")
    polygon = (
        f"POLYGON(({lon - 0.001} {lat - 0.001}, {lon + 0.001} {lat - 0.001}, "
        f"{lon + 0.001} {lat + 0.001}, {lon - 0.001} {lat - 0.001}))"
    )
    assert reports.plain in ids(gis, f"S_INTERSECTS({polygon}, geometry) AND status <> 'closed'")
    flipped = f"BBOX({lat - 0.001}, {lon - 0.001}, {lat + 0.001}, {lon + 0.001})"
    assert reports.plain in ids(gis, f"S_INTERSECTS(geometry, {flipped})", **{"filter-crs": EPSG_4326})


def test_a_filter_never_widens_the_scope_nor_reads_hidden_text(gis, app, accounts, reports):
    from tests.conftest import client_as

    # The outside event exists and matches, but lies outside the key's town.
    assert reports.outside not in ids(gis, f"id = '{reports.outside}' OR town = '440117104'")
    assert reports.outside in ids(client_as(app, accounts, "admin"), f"id = '{reports.outside}'")
    # A sensitive category's description is null for everyone here, so it cannot be probed.
    assert reports.sensitive not in ids(gis, "description LIKE 'sensitive%'")
    assert reports.sensitive in ids(gis, "description IS NULL")


def test_bad_filters_are_400_problems_naming_parameter_and_position(gis, session, reports):
    cases = {
        "reporter_id = 1": 1,
        "status = 'closed' AND contacts IS NULL": 23,
        "status = ": 10,
        "status = 'x''; DROP TABLE events; --'": None,
    }
    for source, position in cases.items():
        response = gis.get(f"{EVENTS}?filter={quote(source)}")
        if position is None:
            # Bound, not spliced: an odd value is just a value.
            assert response.status_code == 200 and response.json["numberReturned"] == 0
            continue
        assert response.status_code == 400, source
        assert response.mimetype == "application/problem+json"
        body = response.json
        assert body["parameter"] == "filter" and body["position"] == position, body
        assert f"at character {position}" in body["detail"]
    assert session.execute(text("SELECT count(*) FROM events")).scalar() >= 3
    for query, name in (
        ("filter=status%3D'x'&filter-lang=cql2-json", "filter-lang"),
        ("filter=status%3D'x'&filter-crs=EPSG:3857", "filter-crs"),
        ("filter-lang=cql2-text", "filter-lang"),
    ):
        response = gis.get(f"{EVENTS}?{query}")
        assert response.status_code == 400 and response.json["parameter"] == name


def test_filters_on_every_collection_and_the_advertised_conformance(gis, app):
    for collection in registry.collections():
        first = collection.properties[0].name
        response = gis.get(f"/ogc/collections/{collection.id}/items?filter={quote(first + ' IS NOT NULL')}")
        assert response.status_code == 200, (collection.id, response.get_data(as_text=True)[:300])
    assert gis.get("/ogc/collections/grids/items?filter=kind%3D'comprehensive'").json["numberReturned"] > 0
    conformance = gis.get("/ogc/conformance").json["conformsTo"]
    assert conformance == CONFORMANCE
    for part in ("features-filter", "cql2-text", "basic-cql2", "basic-spatial-functions"):
        assert any(c.endswith("/conf/" + part) for c in conformance)
    definition = gis.get("/ogc/api").json
    items = definition["paths"]["/collections/events/items"]["get"]["parameters"]
    assert {"$ref": "#/components/parameters/filter"} in items
    languages = definition["components"]["parameters"]["filter-lang"]["schema"]["enum"]
    assert "cql2-text" in languages and "cql-text" in languages


def test_queryables_answer_draft_clients_in_plain_json(gis):
    url = "/ogc/collections/events/queryables"
    schema = gis.get(url)
    assert schema.mimetype == "application/schema+json" and "queryables" not in schema.json
    draft = gis.get(url, headers={"Accept": "application/geo+json, application/json"})
    assert draft.mimetype == "application/json"
    names = [q["id"] for q in draft.json["queryables"]]
    assert names == list(draft.json["properties"]) and "reporter_id" not in names
    links = gis.get("/ogc/collections/events").json["links"]
    assert any(link["rel"] == "queryables" and link["type"] == "application/json" for link in links)


WORDS = st.sampled_from(
    [
        "status",
        "accuracy_m",
        "received_at",
        "geometry",
        "id",
        "reporter_id",
        "'closed'",
        "'it''s'",
        "12.5",
        "-3",
        "1e999",
        "TRUE",
        "NULL",
        "AND",
        "OR",
        "NOT",
        "LIKE",
        "BETWEEN",
        "IN",
        "IS",
        "=",
        "<>",
        "<",
        ">=",
        "(",
        ")",
        ",",
        "S_INTERSECTS",
        "BBOX(113, 23, 114, 24)",
        "POINT(113.5 23.5)",
        "TIMESTAMP('2026-01-01T00:00:00Z')",
        "DATE('2026-01-01')",
        '"status"',
        ";",
    ]
)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(WORDS, min_size=1, max_size=12))
def test_any_filter_is_answered_200_or_a_400_naming_the_filter(gis, words: list[str]) -> None:
    source = " ".join(words)
    response = gis.get(f"{EVENTS}?limit=5&filter={quote(source)}")
    assert response.status_code in (200, 400), (source, response.get_data(as_text=True)[:300])
    if response.status_code == 400:
        body = response.json
        assert body["parameter"] == "filter" and 1 <= body["position"] <= len(source) + 1, (source, body)
