"""Who may read and change what: the one access rule every domain calls.

The `Actor` is built once per request from the credential (a user's access token, or a read-only
GIS key) and answers every access question about that request:

- `reads(model)`: the rows of a table placed in the area tree (`InArea`) the caller may read, as
  a SQL condition; `covers(row)` asks the same of a loaded row; `reads_area(code)` whether the
  figures of an area's whole subtree are the caller's to read, `reads_areas(column)` the same
  as a SQL condition on a column of area codes; `sql_scope(alias)` the `reads` condition as
  bound SQL for the few raw statements.
- `may_write(codes)`: whether the caller may change a row of the organisation (branches,
  buildings, units ...) placed at these codes, or raise an alert there; `may_write_somewhere`
  whether it may anywhere at all.
- `reads_tracks_of(column)`: whose patrol tracks (personal data) the caller may read, as a SQL
  condition on a column of worker ids.
- `may_report_via(channel)`: whether the caller may register a report of that channel;
  `runs_mediation(row)`: whether it may open and run a mediation case placed there.
- What personal and sensitive data the caller may see: `sees_personal(row)` for contacts of
  the people involved; `sees_people` for person ids, names of office holders, trail notes and
  per-person figures; `sees_people_of_area(code)` for figures naming people of an area
  (per mediator); `sees_sensitive_text` for the free text of sensitive categories.

The rule, stated once:
- an admin reads and changes everything, and is the service's operator (reads its metrics);
- a supervisor reads the subtree of their area and changes what lies strictly inside it;
- a worker reads the rows of their grids and those the row names them in (the events they
  reported or were dispatched);
- a patrol track is its worker's: the worker reads their own, a supervisor those of the workers
  with a grid in their subtree, an admin all; a GIS key none (only per-grid figures);
- a GIS key reads the subtree of its area without personal data: exactly what the OGC layers
  give (no person ids, names, phones, notes, free text of sensitive categories, per-person
  groupings), and writes nothing;
- an Open311 app (or an anonymous Open311 reader) hands in residents' reports anywhere (channel
  `citizen`) and reads the residents' requests back without personal data, like a GIS key.

Channels (`may_report_via`): workers report from the field (`grid_worker`); the centres' staff
(supervisors) and admins also register walk-ins at their desk (`centre_desk`, sitting with their
own tier), hotline handoffs, camera alerts and others; only Open311 apps hand in `citizen`
reports.

Mediation: a supervisor in scope and admins run a case (open it, record sessions, set its
outcome); who may read a case reads its figures, but the names of its parties and mediators and
its session notes (`sees_personal`) reach only admins and the supervisors whose scope covers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, exists, false, or_, true

from backend.areas.models import InArea
from backend.areas.service import level_of
from backend.auth.models import UserGrid


@dataclass(frozen=True)
class Actor:
    """The principal behind a request and the access rule that follows from it."""

    role: str  # worker | supervisor | admin | gis | app (an Open311 app)
    user_id: int | None = None
    username: str | None = None
    area_code: str | None = None
    grid_codes: tuple[str, ...] = ()
    api_key_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_operator(self) -> bool:
        """Runs the service and may read its own figures (metrics): admins are operators."""
        return self.is_admin

    @property
    def read_only(self) -> bool:
        """A GIS key: reads without personal data, writes nothing."""
        return self.role == "gis"

    @property
    def takes_citizen_reports(self) -> bool:
        """An Open311 app: hands in residents' reports wherever they are."""
        return self.role == "app"

    def may_report_via(self, channel: str) -> bool:
        """May register a report that came in through `channel`."""
        if self.role == "app":
            return channel == "citizen"
        if self.role == "worker":
            return channel == "grid_worker"
        return self.role in ("supervisor", "admin") and channel != "citizen"

    # --- what may be read -------------------------------------------------------------------

    def reads(self, model: type[InArea]) -> ColumnElement[bool]:
        """The rows of `model` this caller may read, as a SQL condition on its code columns."""
        if self.is_admin:
            return true()
        if self.role == "app":
            channel = getattr(model, "channel", None)
            return false() if channel is None else channel == "citizen"  # type: ignore[no-any-return]
        if self.role == "worker":
            reached = [model.code_column("grid").in_(self.grid_codes)] if self.grid_codes else []
            if self.user_id is not None:
                reached += [getattr(model, column) == self.user_id for column in model.REACHED_THROUGH]
            return or_(false(), *reached)
        level = level_of(self.area_code or "")
        if level is None:
            return false()
        return model.code_column(level) == self.area_code  # type: ignore[no-any-return]

    def covers(self, row: InArea) -> bool:
        """`reads` for a loaded row."""
        if self.role == "app":
            return getattr(row, "channel", None) == "citizen"
        return self.places(row.area_codes()) or (self.role == "worker" and self._named_in(row))

    def places(self, codes: Mapping[str, str | None]) -> bool:
        """A place with these grid, village, town and district codes lies in this caller's scope
        (for a row about to be written)."""
        if self.is_admin:
            return True
        if self.role == "worker":
            return codes.get("grid") in self.grid_codes
        level = level_of(self.area_code or "")
        return level is not None and codes.get(level) == self.area_code

    def reads_area(self, code: str) -> bool:
        """The figures of the whole subtree of `code` are this caller's to read: any area for
        an admin, the subtree of their area for a supervisor or a GIS key, a worker's own grids."""
        if level_of(code) is None:
            return False
        if self.is_admin:
            return True
        if self.role == "worker":
            return code in self.grid_codes
        return self.area_code is not None and code.startswith(self.area_code)

    def sql_scope(self, alias: str, model: type[InArea] | None = None) -> tuple[str, dict[str, Any]]:
        """`reads` as SQL on the code columns of `alias` (a table of `model`) for the few raw
        statements, with its values bound. One statement text for every caller, so the driver
        can keep it prepared (an Open311 app's, the residents' requests, is its own)."""
        if self.role == "app":
            return f"({alias}.channel = 'citizen')", {}
        reached = " ".join(
            f"OR {alias}.{column} = :scope_me" for column in (model.REACHED_THROUGH if model else ())
        )
        sql = (
            f"(:scope_all OR {alias}.grid_code = ANY(:scope_grids) {reached} OR :scope_area IN"
            f" ({alias}.district_code, {alias}.town_code, {alias}.village_code, {alias}.grid_code))"
        )
        worker = self.role == "worker"
        return sql, {
            "scope_all": self.is_admin,
            "scope_grids": list(self.grid_codes) if worker else [],
            "scope_me": self.user_id if worker else None,
            "scope_area": None if worker or level_of(self.area_code or "") is None else self.area_code,
        }

    def reads_areas(self, column: SQLColumnExpression[str]) -> ColumnElement[bool]:
        """`reads_area` as a SQL condition on a column of area codes: the areas whose subtree's
        figures are this caller's to read (e.g. the grids a statistics layer may show)."""
        if self.is_admin:
            return true()
        if self.role == "worker":
            return column.in_(self.grid_codes) if self.grid_codes else false()
        if self.area_code is None:
            return false()
        return column.startswith(self.area_code, autoescape=True)

    def reads_tracks_of(self, worker: SQLColumnExpression[int]) -> ColumnElement[bool]:
        """The workers (a column of user ids) whose patrol tracks this caller may read: their own
        for a worker, those with a grid in a supervisor's subtree, all for an admin, none for a
        GIS key."""
        if self.is_admin:
            return true()
        if self.role == "worker":
            return worker == self.user_id if self.user_id is not None else false()
        if self.role != "supervisor" or level_of(self.area_code or "") is None:
            return false()
        area = self.area_code or ""
        return exists().where(
            UserGrid.user_id == worker, UserGrid.grid_code.startswith(area, autoescape=True)
        )

    def cache_key(self) -> list[object]:
        """What decides the rows this caller sees, for cache validators."""
        return [self.role, self.user_id, self.area_code, list(self.grid_codes)]

    # --- what may be changed ----------------------------------------------------------------

    def manages_area(self, code: str) -> bool:
        """May change (create, reshape, rename) the area `code`: strictly inside a supervisor's
        area."""
        if self.is_admin:
            return True
        return (
            self.role == "supervisor"
            and self.area_code is not None
            and code.startswith(self.area_code)
            and len(code) > len(self.area_code)
        )

    @property
    def may_write_somewhere(self) -> bool:
        """`may_write` holds for some place: admins and supervisors. Lets a service refuse a
        worker or a GIS key before it looks at what they sent (a bulk import, a footprint)."""
        return self.role in ("admin", "supervisor")

    def may_write(self, codes: Mapping[str, str | None]) -> bool:
        """May change an organisation row, or raise an alert, placed at these codes: admins
        anywhere, supervisors in their subtree."""
        return self.may_write_somewhere and self.places(codes)

    def handles(self, row: InArea) -> bool:
        """Works on an event: its grid is theirs, or it names them."""
        return row.code_at("grid") in self.grid_codes or self._named_in(row)

    # --- personal and sensitive data --------------------------------------------------------

    @property
    def sees_people(self) -> bool:
        """Person ids, names of office holders, trail notes and per-person figures."""
        return not (self.read_only or self.role == "app")

    @property
    def sees_sensitive_text(self) -> bool:
        """The free text of events in sensitive categories (矛盾纠纷, 出租屋与流动人口)."""
        return self.sees_people

    def runs_mediation(self, row: InArea) -> bool:
        """May open, record and close a mediation case placed here: admins, and supervisors
        whose scope covers it."""
        return self.is_admin or (self.role == "supervisor" and self.covers(row))

    def sees_people_of_area(self, code: str) -> bool:
        """Figures that name people of an area's subtree (per mediator): admins, and the
        supervisors whose scope holds the area."""
        return self.is_admin or (self.role == "supervisor" and self.reads_area(code))

    def sees_personal(self, row: InArea) -> bool:
        """Contacts (names and phones) of the people a row involves: admins, supervisors whose
        scope covers the row, and the workers the row names (an event's reporter, assignee).
        A mediation case names no worker: its parties, mediators and notes reach only admins
        and supervisors in scope."""
        if not self.sees_people:
            return False
        if self.is_admin:
            return True
        if self.role == "supervisor":
            return self.covers(row)
        return self._named_in(row)

    def _named_in(self, row: InArea) -> bool:
        return self.user_id is not None and any(
            getattr(row, column) == self.user_id for column in row.REACHED_THROUGH
        )
