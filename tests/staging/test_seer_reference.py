"""The stage-group tables against SEER's own, for all 14 schemas (staging.md decision 3).

SEER's ``<schema>_stage_expanded.csv`` evaluates SEER's stage table for every (T, N, M) combination the
schema can derive. Each combination is staged here from the categories; the stage group must equal
SEER's and the row that fired must be the SEER row that matched (so the site files are transcribed
row for row, in SEER's order). Only SEER's in-situ path (T 88) is left out: the NET chapters have no Tis.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nettrial.staging.engine import stage
from tests.conftest import require_shared

REFERENCE = "reference/seer_eod_net"

# schema -> (site, edition); README section 2 of the SEER reference folder.
SCHEMAS = {
    "net_stomach": ("stomach", "8"),
    "net_duodenum": ("duodenum", "8"),
    "net_ampulla": ("ampulla_of_vater", "8"),
    "net_jejunum_ileum": ("jejunum_ileum", "8"),
    "net_appendix": ("appendix", "8"),
    "net_colon_rectum": ("colon_rectum", "8"),
    "net_pancreas": ("pancreas", "8"),
    "net_stomach_v9_2024": ("stomach", "9"),
    "net_duodenum_v9_2024": ("duodenum", "9"),
    "net_ampulla_of_vater_v9_2024": ("ampulla_of_vater", "9"),
    "net_jejunum_and_ileum_v9_2024": ("jejunum_ileum", "9"),
    "net_appendix_v9_2024": ("appendix", "9"),
    "net_colon_and_rectum_v9_2024": ("colon_rectum", "9"),
    "net_pancreas_v9_2024": ("pancreas", "9"),
}

# SEER stage values (README section 3) -> the engine's labels.
STAGE_LABELS = {
    "1": "I",
    "2": "II",
    "2A": "IIA",
    "2B": "IIB",
    "3": "III",
    "3A": "IIIA",
    "3B": "IIIB",
    "4": "IV",
    "99": "unknown",
}
IN_SITU = "88"


def expanded_path(schema: str) -> Path:
    return require_shared(f"{REFERENCE}/{schema}_stage_expanded.csv")


def expanded_rows(schema: str) -> list[dict[str, str]]:
    with expanded_path(schema).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def is_in_situ(row: dict[str, str]) -> bool:
    return row["eod_2018_t"] == IN_SITU


def non_in_situ_line_count(schema: str) -> int:
    """Data lines of the raw file whose T is not 88, counted without the csv module."""
    lines = expanded_path(schema).read_text(encoding="utf-8").splitlines()[1:]
    return sum(1 for line in lines if line.strip() and not line.startswith(f"{IN_SITU},"))


def check(site: str, edition: str, row: dict[str, str]) -> str | None:
    """None when the engine agrees with SEER on this combination, else what differs."""
    t, n, m = row["eod_2018_t"], row["eod_2018_n"], row["eod_2018_m"]
    expected_stage = STAGE_LABELS[row["stage"]]
    expected_row = f"row {row['stage_table_row']}"
    result = stage(site, edition, t=t, n=n, m=m)
    rows_fired = [step.rule for step in result.trace if step.table == "stage_group"]
    if result.stage_label == expected_stage and rows_fired == [expected_row]:
        return None
    return (
        f"{t} {n} {m}: SEER {expected_stage} ({expected_row}), "
        f"engine {result.stage_label} ({', '.join(rows_fired) or 'no stage_group step'})"
    )


@pytest.mark.parametrize("schema", sorted(SCHEMAS))
def test_stage_groups_match_seer_row_for_row(schema: str) -> None:
    site, edition = SCHEMAS[schema]
    checked = 0
    mismatches = []
    for row in expanded_rows(schema):
        if is_in_situ(row):
            continue
        checked += 1
        problem = check(site, edition, row)
        if problem:
            mismatches.append(problem)
    assert checked == non_in_situ_line_count(schema) > 0, f"{schema}: {checked} rows checked"
    assert not mismatches, f"{schema} ({site}, edition {edition}): {len(mismatches)} mismatches:\n" + (
        "\n".join(mismatches)
    )


@pytest.mark.parametrize("schema", sorted(SCHEMAS))
def test_only_the_in_situ_row_is_left_out(schema: str) -> None:
    rows = expanded_rows(schema)
    left_out = [row for row in rows if is_in_situ(row)]
    # Exactly SEER's one in-situ path (88 88 88 -> 88), and no other row mentions 88.
    assert [(r["eod_2018_t"], r["eod_2018_n"], r["eod_2018_m"], r["stage"]) for r in left_out] == [
        (IN_SITU,) * 4
    ]
    kept = [row for row in rows if not is_in_situ(row)]
    assert all(IN_SITU not in (r["eod_2018_n"], r["eod_2018_m"], r["stage"]) for r in kept)
    assert len(kept) == len(rows) - 1 == non_in_situ_line_count(schema)
    # Every kept stage value is one the conversion knows, so nothing is silently skipped.
    assert {row["stage"] for row in kept} <= set(STAGE_LABELS)
