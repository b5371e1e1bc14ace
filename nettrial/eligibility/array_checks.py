"""The checks that compare values in arrays, for the columnar evaluator (``columnar.py``).

Each method gives, row for row, what the row path's check in ``checks.py`` gives; where a case is
unusual (near a limit, an unknown qualifier), the row path's own function decides for that row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from nettrial.eligibility import checks
from nettrial.eligibility.arrays import (
    EPOCH_ORDINAL,
    MET,
    NO_DATE,
    NOT_MET,
    UNKNOWN,
    Index,
    Part,
    fill,
    floats,
    map_days,
    new_part,
    no_missing,
    ordinals,
)
from nettrial.eligibility.context import Context, whole_years
from nettrial.eligibility.flat import FlatTable, first_positions
from nettrial.eligibility.record import HistoryEvent
from nettrial.eligibility.verdicts import Truth
from nettrial.protocol import model
from nettrial.units import to_canonical


class _Light:
    """Attributes only: the parts of a record a check reads, from values already checked."""

    def __init__(self, **values: Any):
        self.__dict__.update(values)


@dataclass(frozen=True)
class _At:
    """The one thing the window functions read from a context: the index date."""

    index_date: dt.date


class ArrayChecks:
    """Mixed into the evaluator, which sets ``table``, ``index`` and ``n``."""

    table: FlatTable
    index: Index
    n: int

    def _history_rows(self, check: model.History, rows: np.ndarray) -> Part:
        """Rows with events of the check's kinds. A plain windowed check (no qualifiers) is settled
        in arrays where its answer is MET or NOT_MET with the history reviewed; every other row runs
        the row path's own check in a light context."""
        part = new_part(self.n)
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
        starts = map_days(self.index.ordinal, lambda d: checks._window_start(check, _At(d)))
        inside = np.zeros(self.n, dtype=bool)
        inside[owners[(days >= 0) & (days > starts[owners])]] = True
        ends = np.full(self.n, -1, dtype=np.int64)
        np.maximum.at(
            ends, owners[days >= 0], map_days(days[days >= 0], lambda d: checks._window_end(d, check))
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
        missing = no_missing(self.n)
        earliest = np.full(self.n, NO_DATE)
        if check.include_index_surgery:
            surgery = self._day_numbers("surgery.date")
            absent = plain & (surgery < 0)
            part.truth[absent] = UNKNOWN
            fill(part.missing, absent, ("surgery.date",))
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
                ends = map_days(surgery, lambda d: checks._window_end(d, check))
                earliest[plain] = (ends[plain] - EPOCH_ORDINAL).astype("datetime64[D]")
                starts = map_days(self.index.ordinal, lambda d: checks._window_start(check, _At(d)))
                truth[plain & (surgery <= starts)] = NOT_MET
            if qualified is Truth.UNKNOWN:
                fill(
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

    def _day_numbers(self, column: str) -> np.ndarray:
        """Day numbers of a date column: parsed in bulk where the text is YYYY-MM-DD, otherwise taken
        from the checked value (so any spelling the record model accepts gives the same day)."""
        typed = self.table.column(column)
        if column not in self.table.raw:
            return ordinals(typed)
        parsed = pd.to_datetime(self.table.raw[column], format="%Y-%m-%d", errors="coerce").to_numpy()
        days = parsed.astype("datetime64[D]").astype(np.int64) + EPOCH_ORDINAL
        missing = np.isnat(parsed)
        days[missing] = ordinals(typed[missing])
        return days

    def _latest_lab(self, test: str, max_age_days: int, part: Part) -> np.ndarray:
        """Rows with a usable result; marks the others as the row path's ``_latest_lab`` does."""
        field = f"labs.{test}"
        value = self.table.column(f"labs.{test}.value")
        day = self._day_numbers(f"labs.{test}.date")
        index = self.index.ordinal
        absent = np.array([v is None for v in value])
        fill(part.missing, absent, (field,))
        usable = (day >= 0) & (day >= index - max_age_days) & (day <= index)
        stale = ~absent & ~usable
        fill(part.missing, stale, (f"{field} (stale)",))
        part.provisional[stale] = self.index.provisional[stale]
        return usable

    def lab(self, check: model.Lab) -> Part:
        part = new_part(self.n)
        usable = self._latest_lab(check.test, check.max_age_days, part)
        value = self.table.canonical.get(check.test, np.full(self.n, None, dtype=object))
        compare = checks.OPS[check.op]
        if check.value is not None:
            limit = to_canonical(check.test, check.value, check.unit, f"protocol labs.{check.test}").value
            numbers = floats(value)
            met = compare(np.where(usable, numbers, np.nan), limit)
            part.truth[usable] = np.where(met[usable], MET, NOT_MET)
            part.provisional[usable] = self.index.provisional[usable]
            return part
        uln = self.table.uln_canonical.get(check.test, np.full(self.n, None, dtype=object))
        no_uln = usable & np.array([u is None for u in uln])
        fill(part.missing, no_uln, (f"labs.{check.test}.uln",))
        rows = usable & ~no_uln
        condition = self.table.column(check.when_true.field) if check.when_true else None
        multiples = [check.times_uln] + ([check.when_true.times_uln] if check.when_true else [])
        ratios = floats(value) / np.where(rows, floats(uln), 1.0)
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
        part = new_part(self.n)
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
            clearance = (140 - years) * floats(kg[rows]) / (72 * floats(scr[rows])) * factor
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
        part = new_part(self.n)
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
        fill(part.missing, absent, (field,))
        return ~absent

    def equals(self, check: model.Equals) -> Part:
        part = new_part(self.n)
        values = self.table.column(check.field)
        known = self._known(part, values, check.field)
        part.truth[known] = np.where([v == check.value for v in values[known]], MET, NOT_MET)
        return part

    def present(self, check: model.Present) -> Part:
        part = new_part(self.n)
        part.truth[self._known(part, self.table.column(check.field), check.field)] = MET
        return part

    def date_not_after(self, check: model.DateNotAfter) -> Part:
        part = new_part(self.n)
        day, reference = self._date_of(check.field), self._date_of(check.reference)
        for row in range(self.n):
            if day[row] is None or reference[row] is None:
                part.missing[row] = (check.field if day[row] is None else check.reference,)
            else:
                part.truth[row] = MET if day[row] <= reference[row] else NOT_MET
        return part

    def blood_pressure(self, check: model.BloodPressure) -> Part:
        """As ``checks.blood_pressure``: mean of the readings up to the index against the thresholds."""
        part = new_part(self.n)
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
        fill(part.missing, np.isin(np.arange(self.n), single[~counted]), ("blood_pressure",))
        met = counted & high & ((treated == 1) | check.untreated_counts)
        open_ = counted & high & ~met & (treated == -1)
        part.truth[single[met]] = MET
        part.truth[single[counted & ~met & ~open_]] = NOT_MET
        fill(part.missing, np.isin(np.arange(self.n), single[open_]), ("blood_pressure.on_treatment",))
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
