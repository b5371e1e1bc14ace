"""Arrays for evaluating many records at once: outcomes per row, and the small tools on them.

Truth is coded NOT_MET 0 < UNKNOWN 1 < MET 2, so Kleene AND is a minimum and OR a maximum.
Dates are day numbers (``date.toordinal()``, -1 for none) or numpy dates (NaT for none).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from nettrial.eligibility.flat import FlatTable, first_positions, objects

NOT_MET, UNKNOWN, MET = 0, 1, 2
TRUTH_NAMES = np.array(["NOT_MET", "UNKNOWN", "MET"], dtype=object)
NO_DATE = np.datetime64("NaT", "D")
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()  # day numbers -> numpy dates


@dataclass
class Part:
    """A node's outcome for every row: truth, provisional flag, binding date, missing fields."""

    truth: np.ndarray  # int8
    provisional: np.ndarray  # bool
    earliest: np.ndarray  # datetime64[D], NaT when none
    missing: np.ndarray  # object: tuple of missing fields, only meaningful where truth is UNKNOWN


def fill(target: np.ndarray, mask: np.ndarray, value: tuple) -> None:
    """Put one tuple in every masked cell (numpy would spread a tuple over several cells)."""
    for row in np.flatnonzero(mask):
        target[row] = value


def no_missing(n: int) -> np.ndarray:
    missing = np.empty(n, dtype=object)
    missing.fill(())
    return missing


def new_part(n: int, truth: int = UNKNOWN) -> Part:
    return Part(np.full(n, truth, dtype=np.int8), np.zeros(n, dtype=bool), np.full(n, NO_DATE), no_missing(n))


@dataclass
class Index:
    """The index date of every row and whether it is provisional (no first dose planned)."""

    date: np.ndarray  # object array of dt.date
    provisional: np.ndarray  # bool

    @cached_property
    def ordinal(self) -> np.ndarray:
        return ordinals(self.date)


def ordinals(days: np.ndarray) -> np.ndarray:
    """Proleptic day numbers (-1 where there is no date); numpy's date conversion is far slower."""
    return np.fromiter((-1 if d is None else d.toordinal() for d in days), dtype=np.int64, count=len(days))


def map_days(ordinals: np.ndarray, shift: Callable[[dt.date], dt.date]) -> np.ndarray:
    """``shift`` applied to each day number (once per distinct day); -1 stays -1."""
    keys = np.sort(pd.unique(ordinals[ordinals >= 0]))
    values = np.array([shift(dt.date.fromordinal(int(o))).toordinal() for o in keys] + [-1], dtype=np.int64)
    where = np.where(ordinals >= 0, np.searchsorted(keys, ordinals), len(keys))
    return values[where]


def floats(values: np.ndarray) -> np.ndarray:
    return np.fromiter((np.nan if v is None else v for v in values), dtype=float, count=len(values))


def index_of(table: FlatTable, first_dose: dt.date | dt.datetime | None) -> Index:
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


def merge_missing(truth: np.ndarray, parts: list[Part]) -> np.ndarray:
    """Missing fields of the UNKNOWN children, in order, for the rows where the node is UNKNOWN.

    Rows share few distinct combinations of their children's lists: each combination is merged
    once (the lists are keyed by value, so the result is the row path's, row for row)."""
    missing = no_missing(len(truth))
    rows = np.flatnonzero(truth == UNKNOWN)
    if len(rows):
        merged = per_pattern(
            [np.where(p.truth[rows] == UNKNOWN, p.missing[rows], None) for p in parts],
            lambda lists: tuple(dict.fromkeys(m for items in lists if items is not None for m in items)),
        )
        missing[rows] = merged
    return missing


def per_pattern(columns: list[np.ndarray], make: Callable[[list[Any]], Any]) -> np.ndarray:
    """``make`` applied once per distinct row of ``columns`` (hashable cells), spread to all rows."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=False)
        key = pd.factorize(key * (len(uniques) + 1) + codes)[0].astype(np.int64)
    firsts = first_positions(key)
    return objects([make([column[row] for column in columns]) for row in firsts])[key]


def combine(truth: np.ndarray, parts: list[Part]) -> Part:
    return Part(
        truth.astype(np.int8),
        np.logical_or.reduce([p.provisional for p in parts]),
        max_dates([p.earliest for p in parts]),
        merge_missing(truth, parts),
    )


def max_dates(dates: list[np.ndarray]) -> np.ndarray:
    # np.maximum propagates NaT; the row path ignores absent dates.
    stacked = np.stack(dates).astype("datetime64[D]")
    valid = ~np.isnat(stacked)
    filled = np.where(valid, stacked, np.datetime64("0001-01-01", "D"))
    result = filled.max(axis=0)
    return np.where(valid.any(axis=0), result, NO_DATE)


def joined(flags: np.ndarray, names: list[str]) -> np.ndarray:
    """``"I5;E1"`` per row from a rows x names boolean matrix, joined once per distinct pattern."""
    packed = flags.astype(np.int64) @ (1 << np.arange(flags.shape[1], dtype=np.int64))
    codes, patterns = pd.factorize(packed)
    return objects([";".join(n for i, n in enumerate(names) if int(p) >> i & 1) for p in patterns])[codes]
