"""CQL2 text filters (OGC API - Features Part 3) on a collection's queryables, as bound SQL.

Supported: comparisons (=, <>, <, <=, >, >=), LIKE, BETWEEN, IN, IS NULL (each with NOT),
AND, OR, NOT and parentheses, and S_INTERSECTS of the geometry with a BBOX(...) or any WKT
geometry. Literals are strings ('...', '' for a quote), numbers, TRUE/FALSE, TIMESTAMP('...')
and DATE('...'); a date-time property also takes a quoted RFC 3339 text, as GDAL 3.6 writes it.

The queryables are the collection's properties (which never read a personal column: the
registry refuses those) plus `id` and `geometry`, so a filter reads nothing a feature does not
show, and it is ANDed with the caller's scope, so it can only narrow what they see. Every value
becomes a bound parameter; nothing from the text is spliced into SQL.

Errors are `FilterError`s naming the 1-based character position of what is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from sqlalchemy import ColumnElement, Text, and_, cast, func, literal, not_, or_, true
from sqlalchemy.types import LargeBinary

from backend.gis.registry import Collection
from backend.stats import LOCAL_TZ

# Bounds on what one filter may ask of the database.
MAX_LENGTH = 4_000
MAX_DEPTH = 40
MAX_LIST = 500
MAX_VERTICES = 10_000

COMPARISONS = ("=", "<>", "<=", ">=", "<", ">")
GEOMETRY_TYPES = (
    "POINT",
    "LINESTRING",
    "POLYGON",
    "MULTIPOINT",
    "MULTILINESTRING",
    "MULTIPOLYGON",
    "GEOMETRYCOLLECTION",
)
KEYWORDS = frozenset({"AND", "OR", "NOT", "LIKE", "BETWEEN", "IN", "IS", "NULL", "TRUE", "FALSE"})


class FilterError(ValueError):
    """A filter that cannot be read or applied, at a 1-based character position."""

    def __init__(self, message: str, position: int):
        super().__init__(f"{message} (at character {position})")
        self.position = position


# --- tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # "name", "quoted", "string", "number", "op", "punct", "geometry", "end"
    text: str
    position: int  # 0-based offset in the filter text
    value: Any = None


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:]*")


def _tokens(text: str) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char == "'":
            j, parts = i + 1, []
            while True:
                end = text.find("'", j)
                if end < 0:
                    raise FilterError("A string is not closed", i + 1)
                parts.append(text[j:end])
                if text.startswith("''", end):
                    parts.append("'")
                    j = end + 2
                    continue
                break
            out.append(Token("string", text[i : end + 1], i, "".join(parts)))
            i = end + 1
        elif char == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise FilterError("A quoted property name is not closed", i + 1)
            out.append(Token("quoted", text[i : end + 1], i, text[i + 1 : end]))
            i = end + 1
        elif text.startswith(("<>", "<=", ">="), i):
            out.append(Token("op", text[i : i + 2], i))
            i += 2
        elif char in "=<>":
            out.append(Token("op", char, i))
            i += 1
        elif char in "(),":
            out.append(Token("punct", char, i))
            i += 1
        elif (match := _NUMBER.match(text, i)) and not (
            char in "+-" and out and out[-1].kind in ("name", "quoted", "string", "number")
        ):
            value = float(match.group()) if re.search(r"[.eE]", match.group()) else int(match.group())
            out.append(Token("number", match.group(), i, value))
            i = match.end()
        elif match := _NAME.match(text, i):
            word = match.group()
            if word.upper() in GEOMETRY_TYPES and text[match.end() :].lstrip().startswith("("):
                end = _closing(text, text.index("(", match.end()))
                out.append(Token("geometry", text[i:end], i, text[i:end]))
                i = end
            else:
                out.append(Token("name", word, i))
                i = match.end()
        else:
            raise FilterError(f"Unexpected character {char!r}", i + 1)
    out.append(Token("end", "", len(text)))
    return out


def _closing(text: str, opening: int) -> int:
    """The offset just past the parenthesis closing the one at `opening`."""
    depth = 0
    for i in range(opening, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    raise FilterError("A geometry's parentheses are not closed", opening + 1)


# --- the tree ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    position: int


@dataclass(frozen=True)
class PropertyRef(Node):
    name: str


@dataclass(frozen=True)
class Literal(Node):
    # "string", "number", "boolean", "timestamp", "date", "geometry"
    kind: str
    value: Any


@dataclass(frozen=True)
class Compare(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Like(Node):
    subject: Node
    pattern: Node
    negated: bool


@dataclass(frozen=True)
class Between(Node):
    subject: Node
    low: Node
    high: Node
    negated: bool


@dataclass(frozen=True)
class In(Node):
    subject: Node
    items: tuple[Node, ...]
    negated: bool


@dataclass(frozen=True)
class IsNull(Node):
    subject: Node
    negated: bool


@dataclass(frozen=True)
class Spatial(Node):
    function: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Logical(Node):
    op: str  # "AND" or "OR"
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    part: Node


@dataclass(frozen=True)
class Filter:
    """A parsed filter: its tree, the text it came from and the CRS of its coordinates."""

    tree: Node
    text: str
    lat_lon: bool = False


# --- the parser -------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.at = 0
        self.depth = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.at]

    def fail(self, message: str, token: Token | None = None) -> FilterError:
        token = token or self.token
        shown = f"{message}, found {token.text!r}" if token.kind != "end" else f"{message}, found the end"
        return FilterError(shown, token.position + 1)

    def keyword(self, *words: str) -> bool:
        token = self.token
        if token.kind == "name" and token.text.upper() in words:
            self.at += 1
            return True
        return False

    def punct(self, char: str) -> bool:
        if self.token.kind == "punct" and self.token.text == char:
            self.at += 1
            return True
        return False

    def expect(self, char: str) -> None:
        if not self.punct(char):
            raise self.fail(f"Expected {char!r}")

    def parse(self) -> Node:
        tree = self.disjunction()
        if self.token.kind != "end":
            raise self.fail("Expected AND, OR or the end")
        return tree

    def nested(self, parse: Callable[[], Node]) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"The filter nests deeper than {MAX_DEPTH}")
        try:
            return parse()
        finally:
            self.depth -= 1

    def disjunction(self) -> Node:
        start = self.token.position
        parts = [self.conjunction()]
        while self.keyword("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Logical(start, "OR", tuple(parts))

    def conjunction(self) -> Node:
        start = self.token.position
        parts = [self.negation()]
        while self.keyword("AND"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else Logical(start, "AND", tuple(parts))

    def negation(self) -> Node:
        start = self.token.position
        if self.keyword("NOT"):
            return Not(start, self.nested(self.negation))
        return self.primary()

    def primary(self) -> Node:
        token = self.token
        if self.punct("("):
            inner = self.nested(self.disjunction)
            self.expect(")")
            return inner
        if token.kind == "name" and token.text.upper().startswith("S_"):
            return self.spatial()
        return self.predicate()

    def spatial(self) -> Node:
        token = self.token
        self.at += 1
        function = token.text.upper()
        if function != "S_INTERSECTS":
            raise self.fail("Only the spatial function S_INTERSECTS is supported", token)
        self.expect("(")
        left = self.geometry_operand()
        self.expect(",")
        right = self.geometry_operand()
        self.expect(")")
        return Spatial(token.position, function, left, right)

    def geometry_operand(self) -> Node:
        token = self.token
        if token.kind == "geometry":
            self.at += 1
            return Literal(token.position, "geometry", _wkt(token))
        if token.kind == "name" and token.text.upper() == "BBOX":
            self.at += 1
            self.expect("(")
            numbers = [self.number()]
            while self.punct(","):
                numbers.append(self.number())
            self.expect(")")
            if len(numbers) not in (4, 6):
                raise FilterError("BBOX takes 4 or 6 numbers", token.position + 1)
            if len(numbers) == 6:
                numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
            return Literal(token.position, "bbox", tuple(numbers))
        return self.scalar()

    def number(self) -> float:
        token = self.token
        if token.kind != "number" or not math.isfinite(token.value):
            raise self.fail("Expected a finite number")
        self.at += 1
        return float(token.value)

    def predicate(self) -> Node:
        start = self.token.position
        subject = self.scalar()
        token = self.token
        if token.kind == "op":
            self.at += 1
            return Compare(token.position, token.text, subject, self.scalar())
        if self.keyword("IS"):
            negated = self.keyword("NOT")
            if not self.keyword("NULL"):
                raise self.fail("Expected NULL")
            return IsNull(start, subject, negated)
        negated = self.keyword("NOT")
        if self.keyword("LIKE"):
            return Like(start, subject, self.scalar(), negated)
        if self.keyword("BETWEEN"):
            low = self.scalar()
            if not self.keyword("AND"):
                raise self.fail("Expected AND in BETWEEN")
            return Between(start, subject, low, self.scalar(), negated)
        if self.keyword("IN"):
            self.expect("(")
            items = [self.scalar()]
            while self.punct(","):
                items.append(self.scalar())
                if len(items) > MAX_LIST:
                    raise self.fail(f"IN takes at most {MAX_LIST} values")
            self.expect(")")
            return In(start, subject, tuple(items), negated)
        if negated:
            raise self.fail("Expected LIKE, BETWEEN or IN after NOT")
        if isinstance(subject, PropertyRef) or (isinstance(subject, Literal) and subject.kind == "boolean"):
            # A boolean term on its own (checked to be one when compiled).
            return subject
        raise self.fail("Expected a comparison, LIKE, BETWEEN, IN or IS NULL")

    def scalar(self) -> Node:
        token = self.token
        self.at += 1
        if token.kind == "string":
            return Literal(token.position, "string", token.value)
        if token.kind == "number":
            if not math.isfinite(token.value):
                raise self.fail("Numbers must be finite", token)
            return Literal(token.position, "number", token.value)
        if token.kind == "quoted":
            return PropertyRef(token.position, token.value)
        if token.kind == "name":
            word = token.text.upper()
            if word in ("TRUE", "FALSE"):
                return Literal(token.position, "boolean", word == "TRUE")
            if word in ("TIMESTAMP", "DATE") and self.punct("("):
                text = self.token
                if text.kind != "string":
                    raise self.fail(f"{word} takes a quoted text")
                self.at += 1
                self.expect(")")
                return Literal(token.position, word.lower(), _instant(word, text))
            if word in KEYWORDS:
                self.at -= 1
                raise self.fail("Expected a property or a value")
            return PropertyRef(token.position, token.text)
        self.at -= 1
        raise self.fail("Expected a property or a value")


def _wkt(token: Token) -> Any:
    try:
        geometry = shapely.from_wkt(token.value)
    except (shapely.errors.GEOSException, ValueError) as error:
        raise FilterError(f"Not a valid WKT geometry: {error}", token.position + 1) from error
    if geometry is None or geometry.is_empty:
        raise FilterError("The geometry is empty", token.position + 1)
    if shapely.get_num_coordinates(geometry) > MAX_VERTICES:
        raise FilterError(f"The geometry has more than {MAX_VERTICES} vertices", token.position + 1)
    if not all(math.isfinite(v) for v in shapely.get_coordinates(geometry).flat):
        raise FilterError("The geometry's coordinates must be finite", token.position + 1)
    return geometry


def _instant(word: str, token: Token) -> datetime | date:
    text = token.value
    try:
        if word == "DATE":
            if not re.fullmatch(r"\d{4}-\d\d-\d\d", text):
                raise ValueError
            return date.fromisoformat(text)
        return _timestamp(text)
    except ValueError as error:
        kind = "a date (YYYY-MM-DD)" if word == "DATE" else "an RFC 3339 date-time with a time zone"
        raise FilterError(f"{text!r} is not {kind}", token.position + 1) from error


def _timestamp(text: str) -> datetime:
    if not re.fullmatch(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", text):
        raise ValueError(text)
    return datetime.fromisoformat(text.upper().replace(" ", "T"))


def parse(text: str, *, lat_lon: bool = False) -> Filter:
    """Read a CQL2 text filter; raise FilterError naming the position of what is wrong.

    `lat_lon` says the coordinates of its geometries are latitude first (filter-crs EPSG:4326
    or EPSG:4490)."""
    if len(text) > MAX_LENGTH:
        raise FilterError(f"The filter is longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    if "\x00" in text:
        raise FilterError("The filter contains NUL", text.index("\x00") + 1)
    if not text.strip():
        raise FilterError("The filter is empty", 1)
    return Filter(_Parser(text).parse(), text, lat_lon)


# --- to SQL -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queryable:
    expr: Any
    type: str  # "string", "integer", "number", "boolean", "date-time", "geometry"


def queryables(collection: Collection) -> dict[str, Queryable]:
    """What a filter on `collection` may name: its feature id, its geometry and its properties."""
    out = {
        "id": Queryable(collection.id_column, "uuid" if collection.id_type == "uuid" else "string"),
        "geometry": Queryable(collection.geometry, "geometry"),
    }
    for prop in collection.properties:
        out[prop.name] = Queryable(prop.expr, prop.type)
    return out


class _Compiler:
    def __init__(self, collection: Collection, lat_lon: bool):
        self.collection = collection
        self.fields = queryables(collection)
        self.lat_lon = lat_lon

    def property(self, node: PropertyRef) -> Queryable:
        found = self.fields.get(node.name)
        if found is None:
            names = ", ".join(sorted(self.fields))
            raise FilterError(
                f"{self.collection.id} has no queryable {node.name!r}; it has {names}", node.position + 1
            )
        return found

    def condition(self, node: Node) -> ColumnElement[bool]:
        if isinstance(node, Logical):
            parts = [self.condition(p) for p in node.parts]
            return and_(*parts) if node.op == "AND" else or_(*parts)
        if isinstance(node, Not):
            return not_(self.condition(node.part))
        if isinstance(node, Compare):
            left, right = self.operands(node, [node.left, node.right])
            return _OPERATORS[node.op](left, right)
        if isinstance(node, Like):
            subject, pattern = self.operands(node, [node.subject, node.pattern], text_only=True)
            like = subject.like(pattern, escape="\\")
            return not_(like) if node.negated else like
        if isinstance(node, Between):
            subject, low, high = self.operands(node, [node.subject, node.low, node.high])
            between = subject.between(low, high)
            return not_(between) if node.negated else between
        if isinstance(node, In):
            subject, *items = self.operands(node, [node.subject, *node.items])
            inside = subject.in_(items)
            return not_(inside) if node.negated else inside
        if isinstance(node, IsNull):
            if not isinstance(node.subject, PropertyRef):
                raise FilterError("IS NULL takes a property", node.subject.position + 1)
            column = self.property(node.subject).expr
            return column.is_not(None) if node.negated else column.is_(None)
        if isinstance(node, Spatial):
            return self.spatial(node)
        if isinstance(node, PropertyRef):
            if self.property(node).type != "boolean":
                raise FilterError(f"{node.name!r} is not a boolean: compare it", node.position + 1)
            return self.property(node).expr == true()  # type: ignore[no-any-return]
        if isinstance(node, Literal) and node.kind == "boolean":
            return literal(node.value)
        raise FilterError("Expected a condition", node.position + 1)

    def operands(self, node: Node, parts: Sequence[Node], text_only: bool = False) -> list[Any]:
        """The SQL of each operand; one of them must be a property, whose type the values take."""
        typed = [self.property(p) for p in parts if isinstance(p, PropertyRef)]
        if not typed:
            raise FilterError("A comparison needs a property on one side", node.position + 1)
        kind = typed[0].type
        if kind == "geometry":
            raise FilterError("Compare geometries with S_INTERSECTS", node.position + 1)
        if text_only and kind not in ("string", "uuid"):
            raise FilterError("LIKE takes a text property", node.position + 1)
        out = []
        for part in parts:
            if isinstance(part, PropertyRef):
                found = self.property(part)
                if found.type != kind and {found.type, kind} != {"integer", "number"}:
                    raise FilterError(
                        f"{part.name!r} is {found.type}, not comparable with {kind}", part.position + 1
                    )
                out.append(found.expr)
            elif isinstance(part, Literal):
                out.append(literal(_value(part, kind)))
            else:
                raise FilterError("Expected a property or a value", part.position + 1)
        if kind == "uuid":
            # Compare ids as text: a malformed id then matches nothing instead of failing.
            out = [cast(o, Text) if o is typed[0].expr else o for o in out]
        return out

    def spatial(self, node: Spatial) -> ColumnElement[bool]:
        geometries = []
        for part in (node.left, node.right):
            if isinstance(part, PropertyRef):
                found = self.property(part)
                if found.type != "geometry":
                    raise FilterError(f"{part.name!r} is not a geometry", part.position + 1)
                geometries.append(found.expr)
            elif isinstance(part, Literal) and part.kind in ("geometry", "bbox"):
                geometries.append(self.geometry_literal(part))
            else:
                raise FilterError("S_INTERSECTS takes the geometry and a BBOX or WKT", part.position + 1)
        return func.ST_Intersects(*geometries)  # type: ignore[no-any-return]

    def geometry_literal(self, node: Literal) -> Any:
        if node.kind == "bbox":
            a, b, c, d = node.value
            min_lon, min_lat, max_lon, max_lat = (b, a, d, c) if self.lat_lon else (a, b, c, d)
            if not (-90 <= min_lat <= max_lat <= 90):
                raise FilterError(
                    "BBOX latitudes must lie within -90..90, the lower first", node.position + 1
                )
            return func.ST_MakeEnvelope(
                literal(min_lon), literal(min_lat), literal(max_lon), literal(max_lat), 4326
            )
        geometry = node.value
        if self.lat_lon:
            geometry = shapely.transform(geometry, lambda xy: xy[:, ::-1])
        return func.ST_GeomFromWKB(literal(shapely.to_wkb(geometry), LargeBinary), 4326)


_OPERATORS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _value(node: Literal, kind: str) -> Any:
    """A literal as the type of the property it is compared with."""
    where = node.position + 1
    if kind in ("string", "uuid"):
        if node.kind != "string":
            raise FilterError(f"Expected a quoted text, found a {node.kind}", where)
        return node.value
    if kind in ("integer", "number"):
        if node.kind != "number":
            raise FilterError(f"Expected a number, found a {node.kind}", where)
        return node.value
    if kind == "boolean":
        if node.kind != "boolean":
            raise FilterError(f"Expected TRUE or FALSE, found a {node.kind}", where)
        return node.value
    if kind == "date-time":
        if node.kind == "timestamp":
            return node.value
        if node.kind == "date":
            # A date is the start of that local day, as `datetime` reads dates.
            return datetime.combine(node.value, time(), ZoneInfo(LOCAL_TZ))
        if node.kind == "string":
            try:
                return _timestamp(node.value)
            except ValueError as error:
                raise FilterError(f"{node.value!r} is not an RFC 3339 date-time", where) from error
        raise FilterError(f"Expected TIMESTAMP('...'), found a {node.kind}", where)
    raise FilterError(f"Cannot compare a {kind}", where)


def to_sql(parsed: Filter, collection: Collection) -> ColumnElement[bool]:
    """The filter as a condition on `collection`'s source, every value bound."""
    return _Compiler(collection, parsed.lat_lon).condition(parsed.tree)


def check(parsed: Filter, collection: Collection) -> None:
    """Raise FilterError if the filter names what `collection` does not have or mistypes it."""
    to_sql(parsed, collection)
