"""Closure statistics as CSV for Excel and as GeoJSON features for a choropleth map."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, replace
from typing import Any

import orjson

from backend.common.fields import to_shape
from backend.errors import ValidationFailed, field_error
from backend.stats.queries import AREA_LEVELS, AreaShape, ClosureStats, Group, empty_figures
from geo.crs import transform_geometry
from geo.geojson import geometry_to_geojson

# Each column's name, then its Chinese name, so both the code and the people reading it in Excel
# know what it is.
KEY_HEADERS = {
    "district": "district 区",
    "district_name": "district_name 区名称",
    "town": "town 镇街",
    "town_name": "town_name 镇街名称",
    "village": "village 村居",
    "village_name": "village_name 村居名称",
    "grid": "grid 网格",
    "grid_name": "grid_name 网格名称",
    "category": "category 事项分类",
    "category_name_zh": "category_name_zh 分类名称",
    "category_name_en": "category_name_en 分类英文名称",
    "channel": "channel 渠道",
    "channel_name": "channel_name 渠道名称",
    "worker": "worker 网格员",
    "mediator": "mediator 调解员",
    "dispute_type": "dispute_type 纠纷类型",
    "dispute_type_name": "dispute_type_name 纠纷类型名称",
    "day": "day 日期",
    "week": "week 周(周一)",
    "month": "month 月份",
}
FIGURE_HEADERS = {
    "due": "due 应结案数",
    "closed": "closed 结案数",
    "closed_on_time": "closed_on_time 按期结案数",
    "reworked": "reworked 返工结案数",
    "overdue_open": "overdue_open 逾期未结数",
    "closure_rate": "closure_rate 结案率",
    "on_time_rate": "on_time_rate 按期结案率",
    "rework_rate": "rework_rate 返工率",
    "median_hours_to_close": "median_hours_to_close 结案时长中位数(小时)",
    "p90_hours_to_close": "p90_hours_to_close 结案时长90分位(小时)",
    "meets_benchmark": "meets_benchmark 达到基准",
    "wilson_low": "wilson_low 置信区间下限",
    "wilson_high": "wilson_high 置信区间上限",
    "below_benchmark": "below_benchmark 显著低于基准",
}
# The composite index's columns (backend.stats.composite), when asked for.
INDEX_HEADERS = {
    "check_in_rate": "check_in_rate 报岗率",
    "alerts_in_progress": "alerts_in_progress 处置中警情数",
    "closure_rate_score": "closure_rate_score 结案率得分",
    "on_time_rate_score": "on_time_rate_score 按期结案率得分",
    "overdue_open_score": "overdue_open_score 逾期未结得分",
    "check_in_rate_score": "check_in_rate_score 报岗率得分",
    "alerts_in_progress_score": "alerts_in_progress_score 警情处置得分",
    "composite_index": "composite_index 综合指数",
}
MEDIATION_HEADERS = {
    "cases": "cases 调解结案数",
    "agreements": "agreements 调解成功数",
    "failed_referred": "failed_referred 调解不成移交数",
    "withdrawn": "withdrawn 撤回数",
    "judicially_confirmed": "judicially_confirmed 司法确认数",
    "referred_court": "referred_court 移交法院",
    "referred_petition_office": "referred_petition_office 移交信访",
    "referred_police": "referred_police 移交公安",
    "success_rate": "success_rate 调解成功率",
    "meets_benchmark": "meets_benchmark 达到基准",
    "wilson_low": "wilson_low 置信区间下限",
    "wilson_high": "wilson_high 置信区间上限",
    "below_benchmark": "below_benchmark 显著低于基准",
    "median_days_to_outcome": "median_days_to_outcome 办结天数中位数",
    "p90_days_to_outcome": "p90_days_to_outcome 办结天数90分位",
}
HOURS = ("median_hours_to_close", "p90_hours_to_close", "median_days_to_outcome", "p90_days_to_outcome")
# A cell starting with one of these is a formula to Excel: names typed by users must not run.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def key_columns(group_by: Iterable[str]) -> list[str]:
    """The key fields a grouping puts in each row, in order."""
    columns: list[str] = []
    for name in group_by:
        columns.append(name)
        if name in AREA_LEVELS:
            columns.append(f"{name}_name")
        elif name == "category":
            columns += ["category_name_zh", "category_name_en"]
        elif name == "channel":
            columns.append("channel_name")
        elif name == "dispute_type":
            columns.append("dispute_type_name")
    return columns


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return f"{value:.2f}" if name in HOURS else f"{value:.6f}".rstrip("0").rstrip(".")
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def figures_csv(
    group_by: Iterable[str], headers: dict[str, str], rows: Iterable[tuple[dict[str, Any], dict[str, Any]]]
) -> bytes:
    """One row per group (key and figures), UTF-8 with a BOM for Excel, bilingual header."""
    keys = key_columns(group_by)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([KEY_HEADERS[k] for k in keys] + list(headers.values()))
    for key, values in rows:
        writer.writerow([_cell(k, key.get(k)) for k in keys] + [_cell(f, values[f]) for f in headers])
    return out.getvalue().encode("utf-8-sig")


def closure_csv(stats: ClosureStats) -> bytes:
    """One row per group (the totals when there is no grouping)."""
    headers = FIGURE_HEADERS | {column: INDEX_HEADERS[column] for column in stats.extra_columns}
    rows = (
        [(group.key, asdict(group.figures) | group.extra) for group in stats.groups]
        if stats.group_by
        else [({}, asdict(stats.totals) | stats.totals_extra)]
    )
    return figures_csv(stats.group_by, headers, rows)


def sorted_groups(stats: ClosureStats, sort: str) -> ClosureStats:
    """The groups ordered by one column (`-column` for descending), empty values last either way
    and ties as they were; the page's table sorts the same way, so its CSV matches it."""
    column = sort.removeprefix("-")
    known = [*key_columns(stats.group_by), *FIGURE_HEADERS, *stats.extra_columns]
    if column not in known:
        raise ValidationFailed(
            f"Cannot sort by {column!r}.",
            errors=[field_error("sort", f"Not a column of this grouping; one of: {', '.join(known)}.")],
        )

    def value(group: Group) -> Any:
        return group.key.get(column, vars(group.figures).get(column, group.extra.get(column)))

    present = [g for g in stats.groups if value(g) is not None]
    empty = [g for g in stats.groups if value(g) is None]
    present.sort(key=value, reverse=sort.startswith("-"))
    return replace(stats, groups=present + empty)


def csv_filename(stats: ClosureStats) -> str:
    start, end = stats.window_from.date().isoformat(), stats.window_to.date().isoformat()
    grouping = "-".join(stats.group_by) or "total"
    return f"closure_{stats.area}_{grouping}_{start}_{end}.csv"


def closure_features(
    stats: ClosureStats, shapes: list[AreaShape], crs: str = "wgs84"
) -> list[dict[str, Any]]:
    """A feature per group, drawn with its area's polygon; areas with no due event get one too."""
    groups = [(group.key, vars(group.figures) | group.extra) for group in stats.groups]
    blank = asdict(empty_figures(stats.benchmark)) | dict.fromkeys(stats.extra_columns)
    return area_features(stats.group_by, groups, shapes, blank, crs)


def area_features(
    group_by: tuple[str, ...],
    groups: list[tuple[dict[str, Any], dict[str, Any]]],
    shapes: list[AreaShape],
    blank: dict[str, Any],
    crs: str = "wgs84",
) -> list[dict[str, Any]]:
    """A feature per group, drawn with its area's polygon; areas with no group get `blank`.

    The first grouping is an area level, so every group belongs to one of `shapes`.
    """
    level = group_by[0]
    by_code: dict[str, list[dict[str, Any]]] = {}
    for key, figures in groups:
        code = key.get(level)
        if code is not None:
            by_code.setdefault(code, []).append({**key, **figures})
    features = []
    for shape in shapes:
        geojson: Any
        if shape.geojson is not None:  # written by PostGIS, passed through as it is
            geojson = orjson.Fragment(shape.geojson)
        else:
            geometry = to_shape(shape.geom)
            if crs != "wgs84":
                geometry = transform_geometry(geometry, "wgs84", crs)
            geojson = geometry_to_geojson(geometry, precision=7)
        found = by_code.get(shape.code) or [
            {name: None for name in key_columns(group_by)}
            | {level: shape.code, f"{level}_name": shape.name}
            | blank
        ]
        for index, properties in enumerate(found):
            feature_id = shape.code if len(found) == 1 else f"{shape.code}.{index + 1}"
            features.append(
                {"type": "Feature", "id": feature_id, "geometry": geojson, "properties": properties}
            )
    return features
