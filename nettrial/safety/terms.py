"""CTCAE term tables: the NCI text of each term and its grading rules, one folder per version.

``data/ctcae/<version>/terms.csv`` holds the NCI text (term, MedDRA code, system organ class, grade
1-5 descriptions) exactly as transcribed in ``shared/spec/ctcae_v5_selected.csv``;
``grading.yaml`` holds the machine-readable cut points and answer rules (its header explains the
format). Adding CTCAE v6.0 is a new folder, not new code (shared/spec/ctcae.md).
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from nettrial._conditions import Condition, parse_condition, parse_conditions
from nettrial._yaml import load_yaml
from nettrial.exceptions import InputError, RuleDataError

_CUT = re.compile(
    r"^\s*(?P<op><=|>=|<|>)\s*(?:(?P<number>\d+(?:\.\d+)?)\s*(?:x\s*(?P<times>ULN|LLN|baseline))?"
    r"|(?P<ref>ULN|LLN|baseline))\s*$"
)
MEASURES = ("value", "increase", "drop", "percent_drop", "systolic", "diastolic")


@dataclass(frozen=True, slots=True)
class Cut:
    """Where a grade starts: ``> 3.0 x ULN`` is ``Cut(">", 3.0, "ULN")``; ``< 1500`` has no reference."""

    op: str
    number: float
    reference: str | None
    text: str

    def holds(self, value: float, references: Mapping[str, float | None]) -> bool | None:
        """Compare in the value's unit; None when the reference (ULN, LLN, baseline) is missing."""
        bound = self.number
        if self.reference is not None:
            ref = references.get(self.reference)
            if ref is None:
                return None
            bound = self.number * ref
        # Rounded on both sides so that 3.0 x 40 is exactly 120 at a boundary.
        value, bound = round(value, 9), round(bound, 9)
        return {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound}[self.op]


def parse_cut(text: str, where: str) -> Cut:
    match = _CUT.match(str(text))
    if match is None:
        raise RuleDataError(where, f"cannot read cut point {text!r} (e.g. '> 3.0 x ULN', '< LLN', '>= 150')")
    if match["ref"]:
        return Cut(match["op"], 1.0, match["ref"], str(text))
    return Cut(match["op"], float(match["number"]), match["times"], str(text))


@dataclass(frozen=True, slots=True)
class Route:
    """Numeric cut points for one unit, measure or baseline situation."""

    name: str
    unit: str | None
    test: str | None
    measure: str
    when: tuple[Condition, ...]
    apply_if_unanswered: bool
    cuts: dict[int, Cut | frozenset[str]]
    categories: tuple[str, ...] = ()
    only_if: Cut | None = None

    @property
    def references(self) -> frozenset[str]:
        cuts = [*self.cuts.values(), self.only_if]
        return frozenset(c.reference for c in cuts if isinstance(c, Cut) and c.reference)


@dataclass(frozen=True, slots=True)
class Rule:
    """A grade from answers (and optionally a relative value condition)."""

    grade: int
    answers: tuple[Condition, ...]
    value: Cut | None
    review: bool
    text: str


@dataclass(frozen=True, slots=True)
class Term:
    """One CTCAE term: NCI text and grading rules."""

    name: str
    version: str
    meddra_code: str
    soc: str
    texts: dict[int, str]
    test: str | None
    value_kind: str
    routes: tuple[Route, ...]
    rules: tuple[Rule, ...]
    review_if_unanswered: frozenset[str]
    minimum_grade: int
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def questions(self) -> tuple[str, ...]:
        """Answers this term can use, in the order of the version's question list."""
        used = {c.field for rule in self.rules for c in rule.answers}
        used |= {c.field for route in self.routes for c in route.when if c.field != "baseline_status"}
        if self.texts.get(5, "").strip().lower() == "death":
            used.add("death")
        return tuple(q for q in questions(self.version) if q in used)

    @property
    def graded_by_value(self) -> bool:
        return bool(self.routes)


@dataclass(frozen=True, slots=True)
class Question:
    name: str
    type: str
    text: str
    values: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


def _folder(version: str):
    folder = resources.files("nettrial.safety") / "data" / "ctcae" / f"v{version}"
    if not folder.is_dir():
        raise InputError("version", f"CTCAE version {version!r} is not available", allowed=versions())
    return folder


@cache
def versions() -> tuple[str, ...]:
    root = resources.files("nettrial.safety") / "data" / "ctcae"
    return tuple(sorted(p.name.removeprefix("v") for p in root.iterdir() if p.is_dir()))


@cache
def _grading(version: str) -> dict[str, Any]:
    return load_yaml((_folder(version) / "grading.yaml").read_text(encoding="utf-8"))


@cache
def questions(version: str) -> dict[str, Question]:
    found = {}
    for name, spec in _grading(version)["questions"].items():
        found[name] = Question(
            name,
            spec["type"],
            spec["text"],
            tuple(str(v) for v in spec.get("values", ())),
            spec.get("min"),
            spec.get("max"),
        )
    return found


@cache
def terms(version: str = "5.0") -> dict[str, Term]:
    """Every term of a CTCAE version, keyed by its exact name."""
    data = _grading(version)
    where = f"ctcae/v{version}/grading.yaml"
    with (_folder(version) / "terms.csv").open(encoding="utf-8", newline="") as handle:
        rows = {row["term"]: row for row in csv.DictReader(handle)}
    missing = set(rows) ^ set(data["terms"])
    if missing:
        raise RuleDataError(where, f"terms.csv and grading.yaml disagree on: {sorted(missing)}")
    return {name: _term(name, version, rows[name], data["terms"][name], where) for name in rows}


def _term(name: str, version: str, row: dict[str, str], spec: dict[str, Any], where: str) -> Term:
    where = f"{where}: {name}"
    texts = {g: row[f"grade{g}"] for g in range(1, 6) if row[f"grade{g}"]}
    rules = [_rule(r, f"{where}: rules[{i}]") for i, r in enumerate(spec.get("rules", []))]
    if texts.get(5, "").strip().lower() == "death":
        rules.append(Rule(5, (parse_condition("death", [True], where),), None, True, "death: true"))
    term = Term(
        name=name,
        version=version,
        meddra_code=row["meddra_code"],
        soc=row["soc"],
        texts=texts,
        test=spec.get("test"),
        value_kind=spec.get("value", "number"),
        routes=tuple(_route(r, spec, f"{where}: routes[{i}]") for i, r in enumerate(spec.get("routes", []))),
        rules=tuple(rules),
        review_if_unanswered=frozenset(spec.get("review_if_unanswered", ())),
        minimum_grade=int(spec.get("minimum_grade", 0)),
        overrides=dict(spec.get("overrides", {})),
    )
    unknown = {q for q in term.questions} | {c.field for r in term.rules for c in r.answers}
    unknown -= set(questions(version))
    if unknown:
        raise RuleDataError(where, f"questions not defined: {sorted(unknown)}")
    return term


def _route(spec: dict[str, Any], term: dict[str, Any], where: str) -> Route:
    measure = spec.get("measure", "value")
    if measure not in MEASURES:
        raise RuleDataError(where, f"unknown measure {measure!r}")
    categories = tuple(str(c) for c in spec.get("categories", ()))
    cuts: dict[int, Cut | frozenset[str]] = {}
    for grade, cut in spec["cuts"].items():
        if categories:
            cuts[int(grade)] = frozenset(str(c) for c in cut)
        else:
            cuts[int(grade)] = parse_cut(cut, f"{where}: grade {grade}")
    return Route(
        name=spec.get("name") or spec.get("unit") or measure,
        unit=spec.get("unit"),
        test=spec.get("test", term.get("test")),
        measure=measure,
        when=parse_conditions(spec.get("when", {}), where),
        apply_if_unanswered=spec.get("if_unanswered") == "apply",
        cuts=dict(sorted(cuts.items())),
        categories=categories,
        only_if=parse_cut(spec["only_if"], f"{where}: only_if") if "only_if" in spec else None,
    )


def _rule(spec: dict[str, Any], where: str) -> Rule:
    conditions = dict(spec["if"])
    value = conditions.pop("value", None)
    answers = parse_conditions(conditions, where)
    text = "; ".join(f"{k}: {v}" for k, v in spec["if"].items())
    return Rule(
        int(spec["grade"]),
        answers,
        parse_cut(value, where) if value is not None else None,
        bool(spec.get("review", False)),
        text,
    )


def find_term(name: str, version: str = "5.0") -> Term:
    """A term by exact name, case-insensitive; an unknown name lists the closest terms."""
    table = terms(version)
    if name in table:
        return table[name]
    folded = {key.casefold(): key for key in table}
    folded |= {alias.casefold(): key for alias, key in _grading(version).get("aliases", {}).items()}
    if str(name).casefold() in folded:
        return table[folded[str(name).casefold()]]
    close = difflib.get_close_matches(str(name).casefold(), folded, n=5, cutoff=0.4)
    names = list(dict.fromkeys(folded[c] for c in close))[:3]
    hint = f"; closest: {', '.join(names)}" if names else ""
    raise InputError("term", f"unknown CTCAE v{version} term {name!r}{hint}")
