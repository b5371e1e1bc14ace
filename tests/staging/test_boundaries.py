"""T, N, M and stage group from pathology findings at every threshold, both editions, all sites.

The cases (``cases/tnm_boundaries.yaml``) were derived by hand from staging.md and SEER's stage tables;
this file only runs them, and checks that they cover every size threshold (at and just above) and every
extent value of every site file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from nettrial.staging.engine import stage
from nettrial.staging.findings import Findings
from nettrial.staging.tables import site_tables, sites

CASES_FILE = Path(__file__).parent / "cases" / "tnm_boundaries.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
EDITIONS = ("8", "9")


def findings_of(case: dict[str, Any]) -> Findings:
    values = dict(case["findings"])
    metastasis = values.pop("metastasis")
    return Findings(**values, metastasis=None if metastasis is None else tuple(metastasis))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_boundary_case(case: dict[str, Any]) -> None:
    result = stage(case["site"], case["edition"], findings=findings_of(case))
    got = {"t": result.t, "n": result.n, "m": result.m, "stage_group": result.stage_label}
    assert got == case["expect"], "\n".join(str(step) for step in result.trace)


def test_case_ids_are_unique() -> None:
    repeated = [name for name, count in Counter(c["id"] for c in CASES).items() if count > 1]
    assert not repeated


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("site", sorted(sites()))
def test_every_extent_value_is_covered(site: str, edition: str) -> None:
    used = {c["findings"]["extent"] for c in CASES if c["site"] == site and c["edition"] == edition}
    assert set(site_tables(site, edition).extent) <= used


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("site", sorted(sites()))
def test_every_size_threshold_is_covered_at_and_just_above(site: str, edition: str) -> None:
    sizes = {
        c["findings"]["size_mm"]
        for c in CASES
        if c["site"] == site and c["edition"] == edition and c["findings"]["size_mm"] is not None
    }
    thresholds = site_tables(site, edition).t.thresholds("size_mm")
    assert thresholds
    for threshold in thresholds:
        assert threshold in sizes, f"{site} {edition}: no case at {threshold:g} mm"
        assert any(threshold < s <= threshold + 0.1 + 1e-9 for s in sizes), (
            f"{site} {edition}: no case just above {threshold:g} mm"
        )
