"""Flask commands: each owns its transaction."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import click
import flask
from flask.cli import AppGroup
from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.areas.models import LEVELS
from backend.auth.models import ROLES
from backend.db import session_scope
from geo.crs import SUPPORTED_CRS

areas_cli = AppGroup("areas", help="Area tree commands.")
demo_cli = AppGroup("demo", help="Demo data.")
org_cli = AppGroup("org", help="Party branches and groups, buildings, emergency units.")

# About two years of reports on Conghua's 865 grids (a third of one a day each).
DEMO_EVENTS = 200_000


def _factory():  # type: ignore[no-untyped-def]
    return flask.current_app.extensions["session_factory"]


def _read_collection(file: Path) -> list[object]:
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise click.ClickException(f"{file} is not JSON: {error}") from error
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise click.ClickException(f"{file} is not a GeoJSON FeatureCollection.")
    return list(document.get("features") or [])


@areas_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--level", type=click.Choice(LEVELS), required=True)
@click.option("--crs", type=click.Choice(SUPPORTED_CRS), default="wgs84", show_default=True)
def import_areas(file: Path, level: str, crs: str) -> None:
    """Import a GeoJSON FeatureCollection of areas: all or nothing."""
    features = _read_collection(file)
    settings = flask.current_app.config["SETTINGS"]

    def run(session: Session) -> tuple[int, list[str]]:
        created, rejected = areas.import_features(
            session, features, level=level, crs=crs, tolerance_m=settings.boundary_tolerance_m
        )
        return created, [f"#{r.index} ({r.code or 'no code'}): {r.reason}" for r in rejected]

    created = _all_or_nothing(run, len(features))
    click.echo(f"imported {created} {level} areas from {file}")


def _all_or_nothing(run: Callable[[Session], tuple[int, list[str]]], total: int) -> int:
    """Run an import in one transaction; commit only when no feature was rejected."""
    session = _factory()()
    try:
        created, rejected = run(session)
        if rejected:
            session.rollback()
            for line in rejected:
                click.echo(f"rejected feature {line}", err=True)
            raise click.ClickException(f"{len(rejected)} of {total} features rejected; nothing was imported.")
        session.commit()
        return created
    finally:
        session.close()


@demo_cli.command("load")
@click.option(
    "--outline",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="District outline GeoJSON (default: the shared data file when present).",
)
@click.option("--crs", type=click.Choice(SUPPORTED_CRS), default="gcj02", show_default=True)
@click.option("--scale", type=click.Choice(["conghua", "guangzhou"]), default="conghua", show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing when areas exist already.")
@click.option(
    "--events/--no-events",
    default=True,
    show_default=True,
    help="Then load an event history, when the database has no events.",
)
@click.option("--event-count", type=click.IntRange(min=1), default=DEMO_EVENTS, show_default=True)
@click.option("--years", type=click.FloatRange(min=0.1, max=20), default=2.0, show_default=True)
def load_demo(
    outline: Path | None, crs: str, scale: str, if_empty: bool, events: bool, event_count: int, years: float
) -> None:
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
    from backend import demo, history
    from backend.events import photos

    if session.scalar(text("SELECT EXISTS (SELECT 1 FROM events)")):
        click.echo("events exist already: no history loaded")
        return
    started = time.monotonic()
    supervisors, workers = demo.load_staff(session, flask.current_app.config["SETTINGS"])
    click.echo(
        f"made {supervisors} centre supervisors and {workers} grid workers for the history"
        f" in {time.monotonic() - started:.1f}s"
    )
    # A bulk load may run longer than a request may.
    session.execute(text("SET LOCAL statement_timeout = 0"))
    summary = history.load_history(session, history.demo_plan(years=years, events=count, seed=seed))
    # The one signed agreement every demo mediation case points to, in the file store.
    photos.store_file(
        session,
        flask.current_app.config["SETTINGS"].media_dir,
        history.agreement_sha256(),
        history.DEMO_AGREEMENT,
    )
    click.echo(
        f"loaded {summary.events:,} events and {summary.actions:,} actions over {years:g} years "
        f"in {summary.seconds:.1f}s (weak towns: {', '.join(summary.weak_towns) or 'none'})"
    )


@org_cli.command("import")
@click.argument("kind", type=click.Choice(["buildings", "units"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--crs", type=click.Choice(SUPPORTED_CRS), default="wgs84", show_default=True)
def import_org(kind: str, file: Path, crs: str) -> None:
    """Import buildings or emergency units from a GeoJSON FeatureCollection: all or nothing."""
    from backend.auth.service import Actor
    from backend.org import imports, schemas

    features = _read_collection(file)
    rows = schemas.read_features(features, crs, "building" if kind == "buildings" else "unit")
    settings = flask.current_app.config["SETTINGS"]

    def run(session: Session) -> tuple[int, list[str]]:
        created, rejected = imports.import_rows(
            session,
            rows,
            actor=Actor(role="admin", username="cli"),
            nearest_min_m=settings.nearest_min_m,
        )
        return created, [f"#{r.index}{f' {r.field}' if r.field else ''}: {r.reason}" for r in rejected]

    created = _all_or_nothing(run, len(features))
    click.echo(f"imported {created} {kind} from {file}")


@demo_cli.command("org")
@click.option("--scale", type=click.Choice(["conghua", "guangzhou"]), default="conghua", show_default=True)
def load_org_demo(scale: str) -> None:
    """Load party branches and groups, buildings, emergency units and check-ins (once)."""
    from backend import demo

    started = time.monotonic()
    with session_scope(_factory()) as session:
        counts = demo.load_org(session, scale)
    if counts is None:
        click.echo("organisation data already loaded (or no grids yet)")
        return
    summary = ", ".join(f"{value} {name.replace('_', ' ')}" for name, value in counts.items())
    click.echo(f"loaded {summary} ({scale}) in {time.monotonic() - started:.1f}s")


@demo_cli.command("prepare")
@click.pass_context
def prepare(ctx: click.Context) -> None:
    """Migrate to head, load the demo if the database is empty, print the logins (one process)."""
    from alembic import command

    from backend.db import alembic_config

    command.upgrade(alembic_config(flask.current_app.config["SETTINGS"].database_url), "head")
    ctx.invoke(load_demo, outline=None, crs="gcj02", scale="conghua", if_empty=True)
    ctx.invoke(load_org_demo, scale="conghua")
    click.echo("Demo logins:")
    ctx.invoke(demo_accounts)


@demo_cli.command("accounts")
def demo_accounts() -> None:
    """Create the demo logins and GIS key if missing, and print them."""
    from backend import demo

    with session_scope(_factory()) as session:
        lines = demo.load_accounts(session, flask.current_app.config["SETTINGS"])
    for line in lines:
        click.echo(f"  {line}")


patrols_cli = AppGroup("patrols", help="Patrols: daily figures.")


@patrols_cli.command("figures")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), help="Local day (default: yesterday)")
@click.option("--connections", default=2, show_default=True, help="Database connections sharing the work")
def patrol_figures(day: object, connections: int) -> None:
    """Compute (again) every worker's patrol figures of a local day (Asia/Shanghai)."""
    from datetime import datetime, timedelta

    from backend.patrols import figures
    from backend.stats.days import local_today

    when = day.date() if isinstance(day, datetime) else local_today() - timedelta(days=1)
    started = time.monotonic()
    count = figures.compute_day_in_parts(_factory(), when, connections=connections)
    click.echo(f"patrol figures of {when}: {count} worker-days in {time.monotonic() - started:.1f}s")


users_cli = AppGroup("users", help="User accounts.")
apikeys_cli = AppGroup("apikeys", help="Read-only GIS API keys.")


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", "display_name", required=True, help="Display name.")
@click.option("--area", "area_code", help="Scope root (supervisors).")
@click.option("--grid", "grids", multiple=True, help="Grid code (workers); repeat for more.")
@click.option("--phone")
@click.password_option()
def create_user(
    username: str,
    role: str,
    display_name: str,
    area_code: str | None,
    grids: tuple[str, ...],
    phone: str | None,
    password: str,
) -> None:
    """Create a user."""
    from backend.auth import service as auth
    from backend.errors import DomainError

    settings = flask.current_app.config["SETTINGS"]
    try:
        with session_scope(_factory()) as session:
            user = auth.create_user(
                session,
                settings,
                username=username,
                password=password,
                display_name=display_name,
                role=role,
                area_code=area_code,
                phone=phone,
            )
            if grids:
                auth.set_user_grids(session, user.id, list(grids))
            user_id = user.id
    except DomainError as error:
        raise click.ClickException(error.detail) from error
    click.echo(f"created {role} {username} (id {user_id})")


@apikeys_cli.command("create")
@click.argument("name")
@click.option("--area", "area_code", required=True, help="Scope root: the key reads this subtree.")
def create_api_key(name: str, area_code: str) -> None:
    """Create a read-only GIS API key and print it (it is shown only once)."""
    from backend.auth import service as auth
    from backend.errors import DomainError

    try:
        with session_scope(_factory()) as session:
            auth.check_area(session, area_code)
            _, secret = auth.create_api_key(session, name=name, area_code=area_code)
    except DomainError as error:
        raise click.ClickException(error.detail) from error
    click.echo(secret)


open311_cli = AppGroup("open311", help="Open311 GeoReport v2: the apps that hand in residents' reports.")


@open311_cli.command("create-app")
@click.argument("name")
def create_open311_app(name: str) -> None:
    """Register an Open311 app and print its api_key (it is shown only once)."""
    from backend.open311 import service as open311

    with session_scope(_factory()) as session:
        _, key = open311.create_app_key(session, name=name)
    click.echo(key)


def register_commands(app: flask.Flask) -> None:
    from backend.ops import cli as ops

    app.cli.add_command(ops.backup_cli)
    app.cli.add_command(ops.housekeeping_command)
    app.cli.add_command(areas_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(org_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(patrols_cli)
    app.cli.add_command(apikeys_cli)
    app.cli.add_command(open311_cli)
