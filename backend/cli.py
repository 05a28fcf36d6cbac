"""Flask commands: each owns its transaction."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import flask
from flask.cli import AppGroup
from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.areas.models import LEVELS
from backend.db import session_scope
from geo.crs import SUPPORTED_CRS

areas_cli = AppGroup("areas", help="Area tree commands.")
demo_cli = AppGroup("demo", help="Demo data.")

# About two years of reports on Conghua's 865 grids (a third of one a day each).
DEMO_EVENTS = 200_000


def _factory():  # type: ignore[no-untyped-def]
    return flask.current_app.extensions["session_factory"]


@areas_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--level", type=click.Choice(LEVELS), required=True)
@click.option("--crs", type=click.Choice(SUPPORTED_CRS), default="wgs84", show_default=True)
def import_areas(file: Path, level: str, crs: str) -> None:
    """Import a GeoJSON FeatureCollection of areas: all or nothing."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise click.ClickException(f"{file} is not JSON: {error}") from error
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise click.ClickException(f"{file} is not a GeoJSON FeatureCollection.")
    features = document.get("features") or []
    settings = flask.current_app.config["SETTINGS"]
    session = _factory()()
    try:
        created, rejected = areas.import_features(
            session, features, level=level, crs=crs, tolerance_m=settings.boundary_tolerance_m
        )
        if rejected:
            session.rollback()
            for r in rejected:
                click.echo(f"rejected feature #{r.index} ({r.code or 'no code'}): {r.reason}", err=True)
            raise click.ClickException(
                f"{len(rejected)} of {len(features)} features rejected; nothing was imported."
            )
        session.commit()
    finally:
        session.close()
    click.echo(f"imported {created} {level} areas from {file}")


@demo_cli.command("load")
@click.option("--outline", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="District outline GeoJSON (default: the shared data file when present).")
@click.option("--crs", type=click.Choice(SUPPORTED_CRS), default="gcj02", show_default=True)
@click.option("--scale", type=click.Choice(["conghua", "guangzhou"]), default="conghua",
              show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing when areas exist already.")
@click.option("--events/--no-events", default=True, show_default=True,
              help="Then load an event history, when the database has no events.")
@click.option("--event-count", type=click.IntRange(min=1), default=DEMO_EVENTS, show_default=True)
@click.option("--years", type=click.FloatRange(min=0.1, max=20), default=2.0, show_default=True)
def load_demo(outline: Path | None, crs: str, scale: str, if_empty: bool, events: bool,
              event_count: int, years: float) -> None:
    """Load the generated area tree (seeded, reproducible) and an event history over it."""
    from backend import demo

    settings = flask.current_app.config["SETTINGS"]
    started = time.monotonic()
    with session_scope(_factory()) as session:
        if if_empty and areas.count_areas(session):
            click.echo("demo data already loaded")
            return
        if scale == "conghua":
            specs = demo.conghua_specs(settings.data_dir, outline)
        else:
            specs = demo.guangzhou_specs(settings.data_dir)
        count = demo.load_areas(session, specs, crs)
        click.echo(f"loaded {count} areas ({scale}) in {time.monotonic() - started:.1f}s")
        if events:
            _load_history(session, event_count, years)


@demo_cli.command("events")
@click.option("--event-count", type=click.IntRange(min=1), default=DEMO_EVENTS, show_default=True)
@click.option("--years", type=click.FloatRange(min=0.1, max=20), default=2.0, show_default=True)
@click.option("--seed", type=int, default=2024, show_default=True)
def load_events(event_count: int, years: float, seed: int) -> None:
    """Load an event history over the current grids, when the database has no events."""
    with session_scope(_factory()) as session:
        _load_history(session, event_count, years, seed)


def _load_history(session: Session, count: int, years: float, seed: int = 2024) -> None:
    from backend import history

    if session.scalar(text("SELECT EXISTS (SELECT 1 FROM events)")):
        click.echo("events exist already: no history loaded")
        return
    # A bulk load may run longer than a request may.
    session.execute(text("SET LOCAL statement_timeout = 0"))
    summary = history.load_history(session, history.demo_plan(years=years, events=count, seed=seed))
    click.echo(
        f"loaded {summary.events:,} events and {summary.actions:,} actions over {years:g} years "
        f"in {summary.seconds:.1f}s (weak towns: {', '.join(summary.weak_towns) or 'none'})"
    )


def register_commands(app: flask.Flask) -> None:
    app.cli.add_command(areas_cli)
    app.cli.add_command(demo_cli)
