"""Prescreening at registry scale: the same rule trees, evaluated a column at a time.

Gives, for every row of a flat table, exactly what :func:`nettrial.eligibility.evaluate.evaluate`
gives for that row's record (verdicts, decision, what is missing, earliest first dose), without
building a record per row:

- values, dates, lab limits, creatinine clearance, age, blood pressure and history windows are
  compared in arrays, with the conversions the row path uses (``flat.py`` computes them once per
  distinct value); near a limit, or where a case is unusual, the row path's own function decides;
- the other checks (tumour, attestation, supportive care, pregnancy test) read few distinct values:
  the row path's function runs once per distinct combination of the columns it reads, and the
  answer is shared. Numeric pathology values are grouped by the thresholds of the staging and grade
  tables, since only their side of each threshold can change a verdict;
- the Kleene combination of the tree is done on arrays (NOT_MET 0 < UNKNOWN 1 < MET 2), and the
  lists of what is missing are merged once per distinct combination.

Rows that ``flat.py`` could not check, or whose check raises, are left to the row path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from nettrial.eligibility import checks
from nettrial.eligibility.array_checks import ArrayChecks
from nettrial.eligibility.arrays import (
    MET,
    NO_DATE,
    NOT_MET,
    TRUTH_NAMES,
    UNKNOWN,
    Part,
    combine,
    index_of,
    joined,
    max_dates,
    no_missing,
    per_pattern,
)
from nettrial.eligibility.context import Context
from nettrial.eligibility.flat import FlatTable, first_positions, submodel_of
from nettrial.eligibility.record import ScreeningRecord
from nettrial.exceptions import InputError
from nettrial.protocol import model
from nettrial.protocol.model import Protocol
from nettrial.staging.batch import thresholds as staging_thresholds
from nettrial.staging.grade import thresholds as grade_thresholds

INDEX_COLUMNS = ("screening_date", "planned_first_dose")
# Numeric pathology inputs and the thresholds where a verdict can change.
PATHOLOGY_BINS: dict[str, Callable[[], set[float]]] = {
    "pathology.size_mm": lambda: set(staging_thresholds("size_mm")),
    "pathology.nodes_positive": lambda: set(staging_thresholds("nodes_positive")),
    "pathology.nodes_examined": lambda: set(staging_thresholds("nodes_examined")),
    "pathology.mesenteric_mass_mm": lambda: set(staging_thresholds("mesenteric_mass_mm")),
    "pathology.ki67_percent": lambda: grade_thresholds("ki67"),
    "pathology.mitoses_per_2mm2": lambda: grade_thresholds("mitoses"),
}


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
    return {name: inner for name, info in fields if (inner := submodel_of(info.annotation)) is not None}


def _construct(record_model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    """A record from values the checks already validated (``flat.py``): no second validation."""
    values = dict(_defaults(record_model))
    inner = _submodels(record_model)
    for name, value in data.items():
        values[name] = _construct(inner[name], value) if name in inner and isinstance(value, dict) else value
    return record_model.model_construct(**values)


class Evaluator(ArrayChecks):
    """Evaluates a protocol's criteria over a checked flat table (``rows`` are the rows to do)."""

    def __init__(self, table: FlatTable, protocol: Protocol, first_dose: dt.date | dt.datetime | None):
        self.table = table
        self.protocol = protocol
        self.first_dose = first_dose
        self.index = index_of(table, first_dose)
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
            return combine(truth, parts)
        if isinstance(node, model.IfThen):
            condition = self.node(node.if_, criterion)
            then = self.node(node.then, criterion)
            truth = np.maximum(MET - condition.truth, then.truth)
            part = combine(truth, [condition, then])
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
        missing = no_missing(count)
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
        earliest = max_dates([p.earliest for p in parts.values()])
        columns: dict[str, Any] = {
            "record": numbers.astype(int),
            "patient_id": self.table.column("identity.patient_id"),
            "decision": np.array(["INELIGIBLE", "INCOMPLETE", "ELIGIBLE"], dtype=object)[overall],
        }
        columns.update({cid: TRUTH_NAMES[truth] for cid, truth in truths.items()})
        columns["failed"] = joined(rules_out, [c.id for c in criteria])
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

            text[rows] = per_pattern(columns, joined)
        return text
