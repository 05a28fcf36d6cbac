"""`flask org import`: buildings or units from GeoJSON, all or nothing, each bad feature named."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.factories import add_square_tree
from tests.org.factories import point


def write(tmp_path, features):  # type: ignore[no-untyped-def]
    path = tmp_path / "org.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return str(path)


def feature(geometry, **properties):  # type: ignore[no-untyped-def]
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def count(session, table):  # type: ignore[no-untyped-def]
    return session.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def test_import_units_all_or_nothing(app, session, tmp_path):
    add_square_tree(session)
    session.commit()
    runner = app.test_cli_runner()
    good = feature(point(120.05, 30.05), name="商铺单元", kind="shop")
    bad = feature(point(125.0, 35.0), name="远方单元", kind="hotel")
    result = runner.invoke(args=["org", "import", "units", write(tmp_path, [good, bad])])
    assert result.exit_code != 0
    assert "#1 geometry" in result.output or "#1 location" in result.output
    assert "nothing was imported" in result.output and count(session, "emergency_units") == 0
    result = runner.invoke(args=["org", "import", "units", write(tmp_path, [good, good])])
    assert result.exit_code == 0, result.output
    assert "imported 2 units" in result.output and count(session, "emergency_units") == 2


def test_import_buildings_in_gcj02(app, session, tmp_path):
    from geo.crs import from_wgs84

    add_square_tree(session)
    session.commit()
    lon, lat = from_wgs84(120.15, 30.15, "gcj02")
    path = write(tmp_path, [feature(point(lon, lat), name="1栋", rental_units=3, safe_rental_units=2)])
    result = app.test_cli_runner().invoke(args=["org", "import", "buildings", path, "--crs", "gcj02"])
    assert result.exit_code == 0, result.output
    grid = session.execute(text("SELECT grid_code FROM buildings")).scalar()
    assert grid == "330100001002002"
