"""Prescreening at registry scale: the same rule trees, evaluated a column at a time.

Gives, for every row of a flat table, exactly what :func:`nettrial.eligibility.evaluate.evaluate`
gives for that row's record (verdicts, decision, what is missing, earliest first dose), without
building a record per row:

- lab values, creatinine clearance and age are compared in arrays, with the conversions the row
  path uses (``flat.py`` computes them once per distinct value);
- every other check reads few columns with few distinct values: it is run by the row path's own
  function once per distinct combination of the columns it reads, and the answer is shared. Numeric
  pathology values are grouped by the thresholds of the staging and grade tables, since only their
  side of each threshold can change a verdict;
- the Kleene combination of the tree is done on arrays (NOT_MET 0 < UNKNOWN 1 < MET 2).

Rows that ``flat.py`` could not check, or whose check raises, are left to the row path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from nettrial.eligibility import checks
from nettrial.eligibility.context import Context, whole_years
from nettrial.eligibility.flat import FlatTable, _model_of, first_positions, objects
from nettrial.eligibility.record import HistoryEvent, ScreeningRecord
from nettrial.eligibility.units import to_canonical
from nettrial.eligibility.verdicts import Truth
from nettrial.exceptions import InputError
from nettrial.protocol import model
from nettrial.protocol.model import Protocol
from nettrial.staging.batch import _thresholds as staging_thresholds
from nettrial.staging.grade import thresholds as grade_thresholds

NOT_MET, UNKNOWN, MET = 0, 1, 2
TRUTH_NAMES = np.array(["NOT_MET", "UNKNOWN", "MET"], dtype=object)
INDEX_COLUMNS = ("screening_date", "planned_first_dose")
NO_DATE = np.datetime64("NaT", "D")
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()  # day numbers -> numpy dates
# Numeric pathology inputs and the thresholds where a verdict can change.
PATHOLOGY_BINS: dict[str, Callable[[], set[float]]] = {
    "pathology.size_mm": lambda: set(staging_thresholds("size_mm")),
    "pathology.nodes_positive": lambda: set(staging_thresholds("nodes_positive")),
    "pathology.nodes_examined": lambda: set(staging_thresholds("nodes_examined")),
    "pathology.mesenteric_mass_mm": lambda: set(staging_thresholds("mesenteric_mass_mm")),
    "pathology.ki67_percent": lambda: grade_thresholds("ki67"),
    "pathology.mitoses_per_2mm2": lambda: grade_thresholds("mitoses"),
}


@dataclass
class Part:
    """A node's outcome for every row: truth, provisional flag, binding date, missing fields."""

    truth: np.ndarray  # int8
    provisional: np.ndarray  # bool
    earliest: np.ndarray  # datetime64[D], NaT when none
    missing: np.ndarray  # object: tuple of missing fields, only meaningful where truth is UNKNOWN


def _fill(target: np.ndarray, mask: np.ndarray, value: tuple) -> None:
    """Put one tuple in every masked cell (numpy would spread a tuple over several cells)."""
    for row in np.flatnonzero(mask):
        target[row] = value


def _no_missing(n: int) -> np.ndarray:
    missing = np.empty(n, dtype=object)
    missing.fill(())
    return missing


def _part(n: int, truth: int = UNKNOWN) -> Part:
    return Part(
        np.full(n, truth, dtype=np.int8), np.zeros(n, dtype=bool), np.full(n, NO_DATE), _no_missing(n)
    )


@dataclass
class Index:
    """The index date of every row and whether it is provisional (no first dose planned)."""

    date: np.ndarray  # object array of dt.date
    provisional: np.ndarray  # bool

    @cached_property
    def ordinal(self) -> np.ndarray:
        return _ordinals(self.date)


def _ordinals(days: np.ndarray) -> np.ndarray:
    """Proleptic day numbers (-1 where there is no date); numpy's date conversion is far slower."""
    return np.fromiter((-1 if d is None else d.toordinal() for d in days), dtype=np.int64, count=len(days))


def _map_days(ordinals: np.ndarray, shift: Callable[[dt.date], dt.date]) -> np.ndarray:
    """``shift`` applied to each day number (once per distinct day); -1 stays -1."""
    keys = np.sort(pd.unique(ordinals[ordinals >= 0]))
    values = np.array([shift(dt.date.fromordinal(int(o))).toordinal() for o in keys] + [-1], dtype=np.int64)
    where = np.where(ordinals >= 0, np.searchsorted(keys, ordinals), len(keys))
    return values[where]


def _floats(values: np.ndarray) -> np.ndarray:
    return np.fromiter((np.nan if v is None else v for v in values), dtype=float, count=len(values))


def _index(table: FlatTable, first_dose: dt.date | dt.datetime | None) -> Index:
    n = len(table.raw)
    if first_dose is not None:
        day = first_dose.date() if isinstance(first_dose, dt.datetime) else first_dose
        return Index(np.full(n, day, dtype=object), np.zeros(n, dtype=bool))
    planned = table.column("planned_first_dose")
    screening = table.column("screening_date")
    provisional = np.array([p is None for p in planned])
    dates = [
        (p.date() if isinstance(p, dt.datetime) else p) if p is not None else s
        for p, s in zip(planned, screening, strict=True)
    ]
    return Index(np.array(dates, dtype=object), provisional)


# --- combining -----------------------------------------------------------------------------------


def _merge_missing(truth: np.ndarray, parts: list[Part]) -> np.ndarray:
    """Missing fields of the UNKNOWN children, in order, for the rows where the node is UNKNOWN.

    Rows share few distinct combinations of their children's lists: each combination is merged
    once (the lists are keyed by value, so the result is the row path's, row for row)."""
    missing = _no_missing(len(truth))
    rows = np.flatnonzero(truth == UNKNOWN)
    if len(rows):
        merged = _per_pattern(
            [np.where(p.truth[rows] == UNKNOWN, p.missing[rows], None) for p in parts],
            lambda lists: tuple(dict.fromkeys(m for items in lists if items is not None for m in items)),
        )
        missing[rows] = merged
    return missing


def _per_pattern(columns: list[np.ndarray], make: Callable[[list[Any]], Any]) -> np.ndarray:
    """``make`` applied once per distinct row of ``columns`` (hashable cells), spread to all rows."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=False)
        key = pd.factorize(key * (len(uniques) + 1) + codes)[0].astype(np.int64)
    firsts = first_positions(key)
    return objects([make([column[row] for column in columns]) for row in firsts])[key]


def _combine(truth: np.ndarray, parts: list[Part]) -> Part:
    return Part(
        truth.astype(np.int8),
        np.logical_or.reduce([p.provisional for p in parts]),
        _max_dates([p.earliest for p in parts]),
        _merge_missing(truth, parts),
    )


def _max_dates(dates: list[np.ndarray]) -> np.ndarray:
    # np.maximum propagates NaT; the row path ignores absent dates.
    stacked = np.stack(dates).astype("datetime64[D]")
    valid = ~np.isnat(stacked)
    filled = np.where(valid, stacked, np.datetime64("0001-01-01", "D"))
    result = filled.max(axis=0)
    return np.where(valid.any(axis=0), result, NO_DATE)


def _nested(values: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {"identity": {"patient_id": "x"}}
    for column, value in values.items():
        if value is None:
            continue
        parts = column.split(".")
        target = document
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return document


@cache
def _defaults(record_model: type[BaseModel]) -> dict[str, Any]:
    # Shared, frozen default values: giving every field spares model_construct a deep copy each time.
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in record_model.model_fields.items()
        if not info.is_required()
    }


@cache
def _submodels(record_model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    fields = record_model.model_fields.items()
    return {name: inner for name, info in fields if (inner := _model_of(info.annotation)) is not None}


def _construct(record_model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    """A record from values the checks already validated (``flat.py``): no second validation."""
    values = dict(_defaults(record_model))
    inner = _submodels(record_model)
    for name, value in data.items():
        values[name] = _construct(inner[name], value) if name in inner and isinstance(value, dict) else value
    return record_model.model_construct(**values)


class _Light:
    """Attributes only: the parts of a record a check reads, from values already checked."""

    def __init__(self, **values: Any):
        self.__dict__.update(values)


@dataclass(frozen=True)
class _At:
    """The one thing the window functions read from a context: the index date."""

    index_date: dt.date


class Evaluator:
    """Evaluates a protocol's criteria over a checked flat table (``rows`` are the rows to do)."""

    def __init__(self, table: FlatTable, protocol: Protocol, first_dose: dt.date | dt.datetime | None):
        self.table = table
        self.protocol = protocol
        self.first_dose = first_dose
        self.index = _index(table, first_dose)
        self.n = len(table.raw)
        # Rows whose check raised, and rows the grouping cannot speak for (positive nodes above the
        # number examined: the message quotes both numbers): left to the row path.
        positive = self.table.column("pathology.nodes_positive")
        examined = self.table.column("pathology.nodes_examined")
        self.failed_rows = np.array(
            [p is not None and e is not None and p > e for p, e in zip(positive, examined, strict=True)],
            dtype=bool,
        )

    # -- tree ------------------------------------------------------------------------------------

    def node(self, node: model.Node, criterion: str) -> Part:
        if isinstance(node, model.AllOf | model.AnyOf | model.AtLeast):
            children = (
                node.all
                if isinstance(node, model.AllOf)
                else node.any
                if isinstance(node, model.AnyOf)
                else node.of
            )
            parts = [self.node(child, criterion) for child in children]
            truths = np.stack([p.truth for p in parts])
            if isinstance(node, model.AllOf):
                truth = truths.min(axis=0)
            elif isinstance(node, model.AnyOf):
                truth = truths.max(axis=0)
            else:
                met = (truths == MET).sum(axis=0)
                possible = met + (truths == UNKNOWN).sum(axis=0)
                truth = np.where(
                    met >= node.at_least, MET, np.where(possible < node.at_least, NOT_MET, UNKNOWN)
                )
            return _combine(truth, parts)
        if isinstance(node, model.IfThen):
            condition = self.node(node.if_, criterion)
            then = self.node(node.then, criterion)
            truth = np.maximum(MET - condition.truth, then.truth)
            part = _combine(truth, [condition, then])
            # Where the condition does not hold the criterion does not apply: MET, nothing else.
            off = condition.truth == NOT_MET
            part.truth[off] = MET
            part.provisional[off] = False
            part.earliest[off] = NO_DATE
            return part
        native = {
            model.Equals: self.equals,
            model.Present: self.present,
            model.DateNotAfter: self.date_not_after,
            model.Lab: self.lab,
            model.CreatinineClearance: self.creatinine_clearance,
            model.Age: self.age,
            model.BloodPressure: self.blood_pressure,
        }
        if type(node) in native:
            return native[type(node)](node)
        if isinstance(node, model.History):
            return self.history(node, criterion)
        return self.shared(node, criterion)

    # -- checks run once per distinct input ---------------------------------------------------------

    def _columns_of(self, node: model.Node) -> list[str]:
        """The columns a check run by ``shared`` reads (prefixes ending in "." take a section)."""
        if isinstance(node, model.Attestation):
            prefixes = ["attestations"]
        elif isinstance(node, model.Tumour):
            prefixes = ["pathology."]
        elif isinstance(node, model.NoneWithin):
            prefixes = [f"{node.list}."]
        elif isinstance(node, model.PregnancyTest):
            prefixes = ["reproductive.pregnancy_test."]
        else:
            raise TypeError(f"no columnar reading of {type(node).__name__}")
        columns = [
            c
            for c in self.table.raw.columns
            if c in prefixes or any(p.endswith(".") and c.startswith(p) for p in prefixes)
        ]
        return columns

    def _index_key(self, node: model.Node, columns: list[str]) -> np.ndarray | None:
        """What of the index a check reads: nothing, its date and provisional flag, or (for an hour
        window) the exact first-dose instant, and that only where a test is recorded."""
        if isinstance(node, model.NoneWithin):
            return pd.factorize(self.index.ordinal * 2 + self.index.provisional)[0]
        if isinstance(node, model.PregnancyTest):
            given = np.zeros(self.n, dtype=bool)
            for column in columns:
                given |= self.table.raw[column].to_numpy(dtype=object) != ""
            planned = self.table.column("planned_first_dose")
            screening = self.table.column("screening_date")
            instants = [f"{s}|{p}" if g else "" for s, p, g in zip(screening, planned, given, strict=True)]
            return pd.factorize(np.array(instants, dtype=object))[0]
        return None

    def _codes(self, node: model.Node, column: str, criterion: str) -> np.ndarray:
        """Group codes of one column: what of it the check can see."""
        if column in PATHOLOGY_BINS:
            return self._binned(column)
        typed = self.table.column(column)
        if column == "attestations" and isinstance(node, model.Attestation):
            answers = [None if not v or criterion not in v else v[criterion].answer for v in typed]
            return pd.factorize(pd.Series(answers, dtype=object))[0]
        return pd.factorize(self.table.raw[column])[0]

    def _keys(
        self, node: model.Node, columns: list[str], extra: np.ndarray | None, criterion: str
    ) -> np.ndarray:
        combined = np.zeros(self.n, dtype=np.int64)
        codes_list = [self._codes(node, c, criterion) for c in columns]
        if extra is not None:
            codes_list.append(extra)
        for codes in codes_list:
            combined = pd.factorize(combined * (codes.max(initial=0) + 2) + codes + 1)[0].astype(np.int64)
        return combined

    def _binned(self, column: str) -> np.ndarray:
        typed = self.table.column(column)
        cuts = np.array(sorted(PATHOLOGY_BINS[column]()), dtype=float)
        number = np.array([np.nan if v is None else float(v) for v in typed])
        bins = np.searchsorted(cuts, number, "left") + np.searchsorted(cuts, number, "right")
        return np.where(np.isnan(number), -1, bins)

    def shared(self, node: model.Node, criterion: str) -> Part:
        """Run the row path's check once per group of rows that read alike.

        Used for the checks whose inputs have few distinct values: tumour, attestation, supportive
        care, pregnancy test."""
        columns = self._columns_of(node)
        index_key = self._index_key(node, columns)
        groups = self._keys(node, columns, index_key, criterion)
        # The representative carries the index columns so that its context has the group's index.
        carried = [c for c in INDEX_COLUMNS if c in self.table.raw.columns and c not in columns]
        firsts = first_positions(groups)  # groups are numbered 0.. as first seen
        count = len(firsts)
        truth = np.full(count, UNKNOWN, dtype=np.int8)
        provisional = np.zeros(count, dtype=bool)
        earliest = np.full(count, NO_DATE)
        missing = _no_missing(count)
        failed = np.zeros(count, dtype=bool)
        typed = {c: self.table.column(c) for c in (*columns, *carried)}
        for group, row in enumerate(firsts):
            try:
                record = _construct(ScreeningRecord, _nested({c: typed[c][row] for c in typed}))
                ctx = Context.for_record(record, self.first_dose)
                if isinstance(node, model.Attestation):
                    outcome = checks.attestation(node, ctx, criterion)
                else:
                    outcome = checks.CHECKS[type(node)](node, ctx)
            except (InputError, ValueError):
                failed[group] = True
                continue
            truth[group] = {"NOT_MET": NOT_MET, "UNKNOWN": UNKNOWN, "MET": MET}[outcome.truth.value]
            provisional[group] = outcome.provisional
            if outcome.earliest_first_dose is not None:
                earliest[group] = np.datetime64(outcome.earliest_first_dose, "D")
            missing[group] = outcome.missing
        self.failed_rows |= failed[groups]
        return Part(truth[groups], provisional[groups], earliest[groups], missing[groups])

    def _history_rows(self, check: model.History, rows: np.ndarray) -> Part:
        """Rows with events of the check's kinds. A plain windowed check (no qualifiers) is settled
        in arrays where its answer is MET or NOT_MET with the history reviewed; every other row runs
        the row path's own check in a light context."""
        part = _part(self.n)
        events = self.table.column("history.events")
        reviewed = self.table.column("history.reviewed")
        surgery = self.table.column("surgery.date")
        rows = rows.copy()
        if (
            check.within is not None
            and not check.where
            and not check.except_where
            and not check.include_index_surgery
        ):
            self._windowed_events(check, rows, events, part)
        for row in np.flatnonzero(rows):
            record = _Light(
                history=_Light(events=events[row], reviewed=bool(reviewed[row])),
                surgery=_Light(date=surgery[row]),
            )
            day = self.index.date[row]
            ctx = Context(record, day, None, None, bool(self.index.provisional[row]), "")
            outcome = checks.history(check, ctx)
            part.truth[row] = {"NOT_MET": NOT_MET, "UNKNOWN": UNKNOWN, "MET": MET}[outcome.truth.value]
            part.provisional[row] = outcome.provisional
            if outcome.earliest_first_dose is not None:
                part.earliest[row] = np.datetime64(outcome.earliest_first_dose, "D")
            part.missing[row] = outcome.missing
        return part

    def _windowed_events(
        self, check: model.History, rows: np.ndarray, events: np.ndarray, part: Part
    ) -> None:
        """Settle rows whose events all have dates: MET if one is inside the window, else NOT_MET
        (history reviewed); ``rows`` keeps only the rows left for the row path."""
        owners, days = [], []
        for row in np.flatnonzero(rows):
            for event in events[row]:
                if event.kind in check.kinds:
                    owners.append(row)
                    days.append(-1 if event.date is None else event.date.toordinal())
        owners, days = np.array(owners, dtype=np.int64), np.array(days, dtype=np.int64)
        undated = np.zeros(self.n, dtype=bool)
        undated[owners[days < 0]] = True
        starts = _map_days(self.index.ordinal, lambda d: checks._window_start(check, _At(d)))
        inside = np.zeros(self.n, dtype=bool)
        inside[owners[(days >= 0) & (days > starts[owners])]] = True
        ends = np.full(self.n, -1, dtype=np.int64)
        np.maximum.at(
            ends, owners[days >= 0], _map_days(days[days >= 0], lambda d: checks._window_end(d, check))
        )
        settled = rows & ~undated & (inside | self._reviewed)
        part.truth[settled] = np.where(inside[settled], MET, NOT_MET)
        part.provisional[settled] = self.index.provisional[settled]
        dated = settled & (ends >= 0)
        part.earliest[dated] = (ends[dated] - EPOCH_ORDINAL).astype("datetime64[D]")
        rows &= ~settled

    def history(self, check: model.History, criterion: str) -> Part:
        """As ``checks.history``. Rows with no event of the check's kinds (most rows) are done here
        in arrays; only rows with such events run the row path's check, once per distinct case."""
        kinds, sets = self._event_kinds
        relevant = np.array([bool(k & set(check.kinds)) for k in sets], dtype=bool)[kinds]
        part = self._history_rows(check, relevant)
        plain = ~relevant
        reviewed = self._reviewed
        timed = check.within is not None
        truth = np.full(self.n, NOT_MET, dtype=np.int8)
        missing = _no_missing(self.n)
        earliest = np.full(self.n, NO_DATE)
        if check.include_index_surgery:
            surgery = self._day_numbers("surgery.date")
            absent = plain & (surgery < 0)
            part.truth[absent] = UNKNOWN
            _fill(part.missing, absent, ("surgery.date",))
            part.provisional[absent], part.earliest[absent] = False, NO_DATE
            plain &= ~absent
            index_event = HistoryEvent(kind="major_surgery", note="index resection")
            qualified = checks._matches(index_event, check.where)
            if check.except_where and qualified is not Truth.NOT_MET:
                qualified = min(
                    qualified, checks._matches(index_event, check.except_where).negate(), key=checks._rank
                )
            code = {Truth.NOT_MET: NOT_MET, Truth.UNKNOWN: UNKNOWN, Truth.MET: MET}[qualified]
            truth[plain] = code
            if timed and qualified is not Truth.NOT_MET:
                ends = _map_days(surgery, lambda d: checks._window_end(d, check))
                earliest[plain] = (ends[plain] - EPOCH_ORDINAL).astype("datetime64[D]")
                starts = _map_days(self.index.ordinal, lambda d: checks._window_start(check, _At(d)))
                truth[plain & (surgery <= starts)] = NOT_MET
            if qualified is Truth.UNKNOWN:
                _fill(
                    missing,
                    plain & (truth == UNKNOWN),
                    (f"history.major_surgery ({', '.join(check.where) or 'details'})",),
                )
        unreviewed = plain & (truth == NOT_MET) & ~reviewed
        truth[unreviewed] = UNKNOWN
        for row in np.flatnonzero(unreviewed):
            missing[row] = (*missing[row], "history")
        part.truth[plain] = truth[plain]
        part.missing[plain] = missing[plain]
        part.earliest[plain] = earliest[plain]
        part.provisional[plain] = self.index.provisional[plain] & timed
        return part

    @cached_property
    def _reviewed(self) -> np.ndarray:
        return np.array([bool(v) for v in self.table.column("history.reviewed")], dtype=bool)

    @cached_property
    def _event_kinds(self) -> tuple[np.ndarray, list[frozenset[str]]]:
        """Per row, a code for the set of history event kinds it records (read once for all checks)."""
        if "history.events" not in self.table.raw:
            return np.zeros(self.n, dtype=np.int64), [frozenset()]
        # one set per distinct cell text (the events follow from the text)
        codes = pd.factorize(self.table.raw["history.events"])[0]
        events = self.table.column("history.events")
        sets = [frozenset(e.kind for e in events[row] or ()) for row in first_positions(codes)]
        kinds = pd.factorize(pd.Series(sets, dtype=object))
        return kinds[0][codes], list(kinds[1])

    # -- checks compared in arrays ------------------------------------------------------------------

    def _day_numbers(self, column: str) -> np.ndarray:
        """Day numbers of a date column: parsed in bulk where the text is YYYY-MM-DD, otherwise taken
        from the checked value (so any spelling the record model accepts gives the same day)."""
        typed = self.table.column(column)
        if column not in self.table.raw:
            return _ordinals(typed)
        parsed = pd.to_datetime(self.table.raw[column], format="%Y-%m-%d", errors="coerce").to_numpy()
        days = parsed.astype("datetime64[D]").astype(np.int64) + EPOCH_ORDINAL
        missing = np.isnat(parsed)
        days[missing] = _ordinals(typed[missing])
        return days

    def _latest_lab(self, test: str, max_age_days: int, part: Part) -> np.ndarray:
        """Rows with a usable result; marks the others as the row path's ``_latest_lab`` does."""
        field = f"labs.{test}"
        value = self.table.column(f"labs.{test}.value")
        day = self._day_numbers(f"labs.{test}.date")
        index = self.index.ordinal
        absent = np.array([v is None for v in value])
        _fill(part.missing, absent, (field,))
        usable = (day >= 0) & (day >= index - max_age_days) & (day <= index)
        stale = ~absent & ~usable
        _fill(part.missing, stale, (f"{field} (stale)",))
        part.provisional[stale] = self.index.provisional[stale]
        return usable

    def lab(self, check: model.Lab) -> Part:
        part = _part(self.n)
        usable = self._latest_lab(check.test, check.max_age_days, part)
        value = self.table.canonical.get(check.test, np.full(self.n, None, dtype=object))
        compare = checks.OPS[check.op]
        if check.value is not None:
            limit = to_canonical(check.test, check.value, check.unit, f"protocol labs.{check.test}").value
            numbers = _floats(value)
            met = compare(np.where(usable, numbers, np.nan), limit)
            part.truth[usable] = np.where(met[usable], MET, NOT_MET)
            part.provisional[usable] = self.index.provisional[usable]
            return part
        uln = self.table.uln_canonical.get(check.test, np.full(self.n, None, dtype=object))
        no_uln = usable & np.array([u is None for u in uln])
        _fill(part.missing, no_uln, (f"labs.{check.test}.uln",))
        rows = usable & ~no_uln
        condition = self.table.column(check.when_true.field) if check.when_true else None
        multiples = [check.times_uln] + ([check.when_true.times_uln] if check.when_true else [])
        ratios = _floats(value) / np.where(rows, _floats(uln), 1.0)
        # Far from every limit the row path's 9-decimal rounding cannot change the comparison, so
        # only rows within 1e-6 of a limit (or with the condition unknown) are done one by one.
        near = np.logical_or.reduce([np.abs(ratios - m) < 1e-6 for m in multiples])
        simple = rows & ~near
        if check.when_true:
            known = np.array([c is not None for c in condition])
            simple &= known
            limit = np.where(
                np.array([bool(c) for c in condition]), check.when_true.times_uln, check.times_uln
            )
        else:
            limit = np.full(self.n, check.times_uln)
        met = compare(ratios, limit)
        part.truth[simple] = np.where(met[simple], MET, NOT_MET)
        part.provisional[simple] = self.index.provisional[simple]
        for row in np.flatnonzero(rows & ~simple):
            ratio = round(value[row] / uln[row], 9)
            multiples = {False: check.times_uln}
            if check.when_true:
                multiples[True] = check.when_true.times_uln
                if condition[row] is not None:
                    multiples = {bool(condition[row]): multiples[bool(condition[row])]}
            truths = {compare(ratio, m) for m in multiples.values()}
            if len(truths) == 1:
                part.truth[row] = MET if truths.pop() else NOT_MET
            else:
                part.missing[row] = (check.when_true.field,)
            part.provisional[row] = self.index.provisional[row]
        return part

    def creatinine_clearance(self, check: model.CreatinineClearance) -> Part:
        part = _part(self.n)
        usable = self._latest_lab("creatinine", check.max_age_days, part)
        scr = self.table.canonical.get("creatinine", np.full(self.n, None, dtype=object))
        birth = self.table.column("identity.date_of_birth")
        sex = self.table.column("identity.sex")
        kg = self.table.column("identity.weight.kg")
        compare = checks.OPS[check.op]
        complete = usable & np.array(
            [
                b is not None and s is not None and k is not None
                for b, s, k in zip(birth, sex, kg, strict=True)
            ]
        )
        rows = np.flatnonzero(complete)
        if len(rows):
            born = np.array([(b.year, b.month * 100 + b.day) for b in birth[rows]], dtype=np.int64).reshape(
                -1, 2
            )
            on = np.array(
                [(d.year, d.month * 100 + d.day) for d in self.index.date[rows]], dtype=np.int64
            ).reshape(-1, 2)
            years = on[:, 0] - born[:, 0] - (on[:, 1] < born[:, 1])
            factor = np.where(np.array([s == "female" for s in sex[rows]]), 0.85, 1.0)
            clearance = (140 - years) * _floats(kg[rows]) / (72 * _floats(scr[rows])) * factor
            # the row path rounds to 6 decimals first: only rows near the limit need it
            far = np.abs(clearance - check.value) > 1e-4
            part.truth[rows[far]] = np.where(compare(clearance[far], check.value), MET, NOT_MET)
            part.provisional[rows[far]] = self.index.provisional[rows[far]]
            usable = usable.copy()
            usable[rows[far]] = False
        for row in np.flatnonzero(usable):
            needs = {
                "identity.date_of_birth": birth[row],
                "identity.sex": sex[row],
                "identity.weight": kg[row],
            }
            absent = tuple(name for name, value in needs.items() if value is None)
            if absent:
                part.missing[row] = absent
                continue
            years = whole_years(birth[row], self.index.date[row])
            clearance = (140 - years) * kg[row] / (72 * scr[row]) * (0.85 if sex[row] == "female" else 1.0)
            part.truth[row] = MET if compare(round(clearance, 6), check.value) else NOT_MET
            part.provisional[row] = self.index.provisional[row]
        return part

    def age(self, check: model.Age) -> Part:
        part = _part(self.n)
        birth, at = self.table.column(check.birth), self.table.column(check.at)
        for row in range(self.n):
            if birth[row] is None or at[row] is None:
                part.missing[row] = (check.birth if birth[row] is None else check.at,)
                continue
            years = whole_years(birth[row], at[row])
            part.truth[row] = MET if check.min_years <= years <= check.max_years else NOT_MET
        return part

    def _date_of(self, path: str) -> np.ndarray:
        if path in ("index_date", "planned_first_dose"):
            return self.index.date
        return np.array(
            [v.date() if isinstance(v, dt.datetime) else v for v in self.table.column(path)], dtype=object
        )

    def _known(self, part: Part, values: np.ndarray, field: str) -> np.ndarray:
        absent = np.array([v is None for v in values], dtype=bool)
        _fill(part.missing, absent, (field,))
        return ~absent

    def equals(self, check: model.Equals) -> Part:
        part = _part(self.n)
        values = self.table.column(check.field)
        known = self._known(part, values, check.field)
        part.truth[known] = np.where([v == check.value for v in values[known]], MET, NOT_MET)
        return part

    def present(self, check: model.Present) -> Part:
        part = _part(self.n)
        part.truth[self._known(part, self.table.column(check.field), check.field)] = MET
        return part

    def date_not_after(self, check: model.DateNotAfter) -> Part:
        part = _part(self.n)
        day, reference = self._date_of(check.field), self._date_of(check.reference)
        for row in range(self.n):
            if day[row] is None or reference[row] is None:
                part.missing[row] = (check.field if day[row] is None else check.reference,)
            else:
                part.truth[row] = MET if day[row] <= reference[row] else NOT_MET
        return part

    def blood_pressure(self, check: model.BloodPressure) -> Part:
        """As ``checks.blood_pressure``: mean of the readings up to the index against the thresholds."""
        part = _part(self.n)
        recorded = self.table.column("blood_pressure")
        # One reading (the usual case): its values are the means; settled in arrays.
        single = np.flatnonzero([v is not None and len(v) == 1 for v in recorded])
        readings = [recorded[row][0] for row in single]
        day = np.fromiter((r.date.toordinal() for r in readings), np.int64, len(single))
        systolic = np.fromiter((r.systolic for r in readings), np.int64, len(single))
        diastolic = np.fromiter((r.diastolic for r in readings), np.int64, len(single))
        treated = np.fromiter(
            ({True: 1, False: 0, None: -1}[r.on_treatment] for r in readings), np.int64, len(single)
        )
        counted = day <= self.index.ordinal[single]
        high = (systolic >= check.systolic_at_least) | (diastolic >= check.diastolic_at_least)
        _fill(part.missing, np.isin(np.arange(self.n), single[~counted]), ("blood_pressure",))
        met = counted & high & ((treated == 1) | check.untreated_counts)
        open_ = counted & high & ~met & (treated == -1)
        part.truth[single[met]] = MET
        part.truth[single[counted & ~met & ~open_]] = NOT_MET
        _fill(part.missing, np.isin(np.arange(self.n), single[open_]), ("blood_pressure.on_treatment",))
        others = np.ones(self.n, dtype=bool)
        others[single] = False
        for row in np.flatnonzero(others):
            readings = [r for r in recorded[row] or [] if r.date <= self.index.date[row]]
            if not readings:
                part.missing[row] = ("blood_pressure",)
                continue
            systolic = round(sum(r.systolic for r in readings) / len(readings), 1)
            diastolic = round(sum(r.diastolic for r in readings) / len(readings), 1)
            if systolic < check.systolic_at_least and diastolic < check.diastolic_at_least:
                part.truth[row] = NOT_MET
                continue
            treated = [r.on_treatment for r in readings]
            if any(treated) or check.untreated_counts:
                part.truth[row] = MET
            elif None in treated:
                part.missing[row] = ("blood_pressure.on_treatment",)
            else:
                part.truth[row] = NOT_MET
        return part

    # -- the decision ---------------------------------------------------------------------------------

    def results(self, numbers: np.ndarray) -> pd.DataFrame:
        """One prescreen row per table row (``numbers``: their record numbers in the file)."""
        criteria = self.protocol.eligibility.criteria
        parts = {c.id: self.node(c.rule, c.id) for c in criteria}
        truths = {cid: p.truth for cid, p in parts.items()}
        overall_parts, relevant = [], {}
        for entry in self.protocol.eligibility.inclusion_logic:
            members = [entry] if isinstance(entry, str) else entry.any
            truth = np.stack([truths[m] for m in members]).max(axis=0)
            overall_parts.append(truth)
            for m in members:
                relevant[m] = relevant.get(m, np.zeros(self.n, dtype=bool)) | (truth != MET)
        for c in criteria:
            if c.kind == "exclusion":
                overall_parts.append(MET - truths[c.id])
                relevant[c.id] = np.ones(self.n, dtype=bool)
        overall = np.stack(overall_parts).min(axis=0)
        rules_out = np.stack(
            [truths[c.id] == (NOT_MET if c.kind == "inclusion" else MET) for c in criteria], axis=1
        )
        earliest = _max_dates([p.earliest for p in parts.values()])
        columns: dict[str, Any] = {
            "record": numbers.astype(int),
            "patient_id": self.table.column("identity.patient_id"),
            "decision": np.array(["INELIGIBLE", "INCOMPLETE", "ELIGIBLE"], dtype=object)[overall],
        }
        columns.update({cid: TRUTH_NAMES[truth] for cid, truth in truths.items()})
        columns["failed"] = _joined(rules_out, [c.id for c in criteria])
        columns["missing"] = self._missing_text(criteria, parts, relevant)
        columns["earliest_first_dose"] = np.where(np.isnat(earliest), "", np.datetime_as_string(earliest))
        columns["provisional"] = self.index.provisional.copy()
        columns["error"] = ""
        return pd.DataFrame(columns)

    def _missing_text(
        self, criteria: list, parts: dict[str, Part], relevant: dict[str, np.ndarray]
    ) -> np.ndarray:
        text = np.full(self.n, "", dtype=object)
        needed = [(parts[c.id].truth == UNKNOWN) & relevant[c.id] for c in criteria]
        rows = np.flatnonzero(np.logical_or.reduce(needed))
        if len(rows):
            columns = [
                np.where(need[rows], parts[c.id].missing[rows], None)
                for c, need in zip(criteria, needed, strict=True)
            ]
            ids = [c.id for c in criteria]

            def joined(lists: list[Any]) -> str:
                entries = (
                    f"{cid}: {m}"
                    for cid, items in zip(ids, lists, strict=True)
                    if items is not None
                    for m in items
                )
                return "; ".join(dict.fromkeys(entries))

            text[rows] = _per_pattern(columns, joined)
        return text


def _joined(flags: np.ndarray, names: list[str]) -> np.ndarray:
    """``"I5;E1"`` per row from a rows x names boolean matrix, joined once per distinct pattern."""
    packed = flags.astype(np.int64) @ (1 << np.arange(flags.shape[1], dtype=np.int64))
    codes, patterns = pd.factorize(packed)
    return objects([";".join(n for i, n in enumerate(names) if int(p) >> i & 1) for p in patterns])[codes]
