"""`flask areas import` and `flask demo load` own their transactions: all or nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.factories import add_square_tree, polygon


@pytest.fixture
def runner(app):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


def feature(code, name, geometry):  # type: ignore[no-untyped-def]
    return {"type": "Feature", "properties": {"code": code, "name": name}, "geometry": geometry}


def write(tmp_path, features):  # type: ignore[no-untyped-def]
    path = tmp_path / "towns.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return str(path)


def count(session, prefix):  # type: ignore[no-untyped-def]
    return session.execute(
        text("SELECT count(*) FROM areas WHERE code LIKE :p"), {"p": prefix + "%"}
    ).scalar()


def test_import_with_a_bad_feature_imports_nothing_and_reports_each(runner, session, tmp_path):
    add_square_tree(session)
    session.commit()
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[120, 30], [120.1, 30.1], [120.1, 30], [120, 30.1], [120, 30]]],
    }
    path = write(
        tmp_path,
        [
            feature("330100001004", "好村", polygon(120.0, 30.0, 120.05, 30.05)),  # overlaps 001
            feature("330100001005", "坏村", bowtie),
            feature("330100003001", "无父村", polygon(121.0, 30.0, 121.05, 30.05)),
        ],
    )
    result = runner.invoke(args=["areas", "import", path, "--level", "village"])
    assert result.exit_code != 0
    assert "#0 (330100001004)" in result.output and "#1 (330100001005)" in result.output
    assert "#2 (330100003001)" in result.output and "nothing was imported" in result.output
    assert count(session, "330100001004") == 0


def test_import_gcj02_districts(runner, session, tmp_path):
    path = write(
        tmp_path,
        [
            feature("330200", "一区", polygon(121.0, 30.0, 121.2, 30.2)),
            feature("330300", "二区", polygon(121.2, 30.0, 121.4, 30.2)),
        ],
    )
    result = runner.invoke(args=["areas", "import", path, "--level", "district", "--crs", "gcj02"])
    assert result.exit_code == 0, result.output
    assert "imported 2 district areas" in result.output
    assert count(session, "3302") + count(session, "3303") == 2


def test_import_rejects_a_file_that_is_not_a_feature_collection(runner, tmp_path):
    path = tmp_path / "x.geojson"
    path.write_text("[1, 2]")
    result = runner.invoke(args=["areas", "import", str(path), "--level", "town"])
    assert result.exit_code != 0 and "FeatureCollection" in result.output


def test_demo_load_if_empty_is_idempotent(runner, session):
    before = count(session, "")
    result = runner.invoke(args=["demo", "load", "--if-empty"])
    assert result.exit_code == 0 and "already loaded" in result.output
    assert count(session, "") == before
