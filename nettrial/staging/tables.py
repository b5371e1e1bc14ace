"""Load the staging data files into compiled rule tables.

One YAML file per site and edition (``data/ajcc8/<site>.yaml``, ``data/ajcc9/<site>.yaml``), plus the
shared files ``sites.yaml``, ``m_category.yaml``, ``scope.yaml`` and ``inputs.yaml``. Nothing here
knows a particular site: the files are the clinical content, this module only reads and checks them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Any

import yaml

from nettrial._conditions import Condition, Truth, all_of, parse_conditions
from nettrial._yaml import load_yaml
from nettrial.exceptions import InputError, RuleDataError

DATA = resources.files("nettrial.staging") / "data"
ANY = "*"


def read_yaml(relative: str) -> Any:
    """Parse one data file, naming it in any error."""
    path = DATA / relative
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RuleDataError(relative, f"cannot be read: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of a category table: the category it gives when all its conditions hold."""

    id: str
    category: str
    conditions: tuple[Condition, ...]
    source: str | None = None

    def evaluate(self, record: dict[str, Any]) -> Truth:
        return all_of(self.conditions, record)


@dataclass(frozen=True, slots=True)
class Decision:
    """The category a table gave: ``fired`` decided it, ``possible`` are rules left open by missing data."""

    category: str | None
    fired: Rule | None
    possible: tuple[Rule, ...]

    @property
    def known(self) -> bool:
        return self.fired is not None and not self.possible

    @property
    def candidates(self) -> frozenset[str]:
        """Every category still possible: one when known, several when data are missing."""
        rules = (*self.possible, self.fired) if self.fired else self.possible
        return frozenset(r.category for r in rules)


@dataclass(frozen=True, slots=True)
class RuleTable:
    """An ordered rule list (first match wins) and the category that stands for "unknown"."""

    name: str
    unknown: str | None
    rules: tuple[Rule, ...]

    def decide(self, record: dict[str, Any]) -> Decision:
        """First match, in three-valued logic.

        A rule that cannot be decided because data are missing keeps its category possible. The
        result is known only when a rule holds and every rule before it is definitely false;
        an undecided rule giving the same category as the one that holds does not matter.
        """
        open_rules: list[Rule] = []
        for rule in self.rules:
            truth = rule.evaluate(record)
            if truth is False:
                continue
            if truth is True:
                still_open = tuple(r for r in open_rules if r.category != rule.category)
                if not still_open:
                    return Decision(rule.category, rule, ())
                return Decision(self.unknown, None, (*still_open, rule))
            open_rules.append(rule)
        return Decision(self.unknown, None, tuple(open_rules))

    def fields(self) -> set[str]:
        return {c.field for rule in self.rules for c in rule.conditions}

    def categories(self) -> frozenset[str]:
        return frozenset(rule.category for rule in self.rules)

    def thresholds(self, field: str) -> set[float]:
        return {
            comparison.threshold
            for rule in self.rules
            for condition in rule.conditions
            if condition.field == field
            for comparison in condition.comparisons
        }


@dataclass(frozen=True, slots=True)
class StageRow:
    """One row of a stage-group table; ``None`` in t/n/m means any category."""

    number: int
    t: frozenset[str] | None
    n: frozenset[str] | None
    m: frozenset[str] | None
    stage_group: str | None

    def matches(self, t: str, n: str, m: str) -> bool:
        return all(cell is None or value in cell for cell, value in ((self.t, t), (self.n, n), (self.m, m)))

    @property
    def stage_label(self) -> str:
        return self.stage_group or "unknown"

    def describe(self) -> str:
        cells = ("any" if c is None else "/".join(sorted(c)) for c in (self.t, self.n, self.m))
        return " ".join(cells) + f" -> {self.stage_label}"


@dataclass(frozen=True)
class SiteTables:
    """Everything the engine needs to stage one site in one edition."""

    site: str
    edition: str
    chapter: str
    path: str
    sources: dict[str, str]
    extent: dict[str, str]
    categories: dict[str, tuple[str, ...]]
    t: RuleTable
    n: RuleTable
    m: RuleTable
    stage_rows: tuple[StageRow, ...]
    stage_source: str

    def stage_group(self, t: str, n: str, m: str) -> StageRow | None:
        """First matching row (SEER's rule), looked up in an index built from the rows once."""
        key = (t, n, m)
        index = self._stage_index
        if key in index:
            return index[key]
        return next((row for row in self.stage_rows if row.matches(t, n, m)), None)

    @cached_property
    def _stage_index(self) -> dict[tuple[str, str, str], StageRow | None]:
        cats = self.categories
        return {
            (t, n, m): next((row for row in self.stage_rows if row.matches(t, n, m)), None)
            for t in cats["t"]
            for n in cats["n"]
            for m in cats["m"]
        }

    def fields(self) -> set[str]:
        return self.t.fields() | self.n.fields() | self.m.fields()

    def source(self, key: str | None) -> str | None:
        return self.sources.get(key, key) if key else None


# --- compiling -------------------------------------------------------------------------------


def _rule_table(name: str, spec: dict[str, Any], where: str) -> RuleTable:
    try:
        rules = tuple(
            Rule(
                id=str(r["id"]),
                category=str(r["category"]),
                conditions=parse_conditions(r["when"], f"{where}.rules[{i}]"),
                source=r.get("source"),
            )
            for i, r in enumerate(spec["rules"])
        )
    except (KeyError, TypeError) as exc:
        raise RuleDataError(where, f"each rule needs id, category and when ({exc})") from exc
    return RuleTable(name=name, unknown=spec.get("unknown"), rules=rules)


def _cell(text: str) -> frozenset[str] | None:
    return None if text == ANY else frozenset(str(text).split())


def _stage_rows(rows: list[list[str]], where: str) -> tuple[StageRow, ...]:
    compiled = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, list) or len(row) != 4:
            raise RuleDataError(where, f"row {number} must be [t, n, m, stage_group]: {row!r}")
        t, n, m, group = (str(cell) for cell in row)
        compiled.append(StageRow(number, _cell(t), _cell(n), _cell(m), None if group == "unknown" else group))
    return tuple(compiled)


@cache
def m_category() -> tuple[RuleTable, dict[str, str]]:
    """The shared M table and the metastasis-site vocabulary (site -> hepatic/extrahepatic/...)."""
    data = read_yaml("m_category.yaml")
    return _rule_table("m", data["m"], "m_category.yaml:m"), dict(data["metastasis_sites"])


@cache
def site_tables(site: str, edition: str) -> SiteTables:
    """The compiled tables of one site and edition (site and edition already resolved)."""
    folder = editions()[edition]["folder"]
    path = f"{folder}/{site}.yaml"
    data = read_yaml(path)
    if data.get("site") != site or str(data.get("edition")) != edition:
        raise RuleDataError(path, f"declares site {data.get('site')!r} edition {data.get('edition')!r}")
    m_table, _ = m_category()
    m_table = _rule_table("m", data["m"], f"{path}:m") if "m" in data else m_table
    stage_spec = data["stage_group"]
    return SiteTables(
        site=site,
        edition=edition,
        chapter=data["chapter"],
        path=path,
        sources=dict(data.get("sources", {})),
        extent=dict(data.get("extent", {})),
        categories={
            "t": tuple(data["categories"]["t"]),
            "n": tuple(data["categories"]["n"]),
            "m": tuple(sorted({r.category for r in m_table.rules})),
        },
        t=_rule_table("t", data["t"], f"{path}:t"),
        n=_rule_table("n", data["n"], f"{path}:n"),
        m=m_table,
        stage_rows=_stage_rows(stage_spec["rows"], f"{path}:stage_group"),
        stage_source=stage_spec.get("source", ""),
    )


# --- sites and editions ----------------------------------------------------------------------


@cache
def editions() -> dict[str, dict[str, Any]]:
    return read_yaml("sites.yaml")["editions"]


@cache
def sites() -> dict[str, dict[str, Any]]:
    return read_yaml("sites.yaml")["sites"]


@cache
def _site_names() -> dict[str, str]:
    names = {}
    for key, spec in sites().items():
        for name in (key, *spec.get("aliases", [])):
            names[name.lower()] = key
    return names


_TOPOGRAPHY = re.compile(r"^C\d{2}\.?\d$", re.IGNORECASE)


def _in_range(code: str, spec: str) -> bool:
    low, _, high = spec.replace(".", "").partition("-")
    return low <= code <= (high or low)


@cache
def resolve_site(text: str) -> str:
    """Site key from a name, an alias or an ICD-O-3 topography code (``C25.1`` or ``C251``)."""
    value = str(text).strip()
    if _TOPOGRAPHY.match(value):
        code = value.upper().replace(".", "")
        for key, spec in sites().items():
            if any(_in_range(code, r) for r in spec["topography"]):
                return key
        raise InputError("site", f"topography {value} is not a GEP-NET site", allowed=_topographies())
    key = _site_names().get(value.lower().replace(" ", "_").replace("-", "_"))
    if key is None:
        raise InputError("site", f"unknown site {value!r}", allowed=sites())
    return key


def _topographies() -> list[str]:
    return [r for spec in sites().values() for r in spec["topography"]]


@cache
def resolve_edition(text: str | int | None, default: str = "9") -> str:
    """Edition key ("8" or "9") from ``8``, ``8th``, ``V9`` ...; empty means ``default``."""
    value = "" if text is None else str(text).strip()
    if not value:
        return default
    for key, spec in editions().items():
        if value == key or value in spec.get("aliases", []):
            return key
    raise InputError("edition", f"unknown AJCC edition {value!r}", allowed=editions())
