"""High-risk factors and the pancreatic NET recurrence risk score shown beside criterion I4."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from nettrial.eligibility.context import Context
from nettrial.eligibility.record import ScreeningRecord
from nettrial.eligibility.risk import high_risk_information

RECORD = json.loads((Path(__file__).parent / "eligible_record.json").read_text())


def info(**pathology) -> dict:
    document = copy.deepcopy(RECORD)
    document["pathology"].update(pathology)
    return high_risk_information(Context.for_record(ScreeningRecord.model_validate(document)))


@pytest.mark.parametrize(
    ("pathology", "symptomatic", "score", "band"),
    [
        # size > 2 cm (2) + Ki-67 3-20 (1) + node-positive (1) = 4
        ({"size_mm": 32, "ki67_percent": 8, "nodes_positive": 3}, False, "4", "intermediate"),
        # exactly 2 cm is not > 2 cm; Ki-67 2.9 % scores nothing; node-negative
        ({"size_mm": 20, "ki67_percent": 2.9, "nodes_positive": 0}, False, "0", "low"),
        # Ki-67 20.1 % scores 6 -> high
        ({"size_mm": 15, "ki67_percent": 20.1, "nodes_positive": 0}, False, "6", "high"),
        # symptomatic 1 + size 2 + Ki-67 3.0 (1) + nodes 1 = 5
        ({"size_mm": 25, "ki67_percent": 3.0, "nodes_positive": 1}, True, "5", "intermediate"),
        # Ki-67 unknown: one band of the group, at most 6 more points, never 1 + 6
        ({"size_mm": 25, "ki67_percent": None, "nodes_positive": 0}, False, "2-8", "undetermined"),
    ],
)
def test_recurrence_risk_score(pathology, symptomatic, score, band) -> None:
    document_info = info(**pathology) if symptomatic is False else _symptomatic(**pathology)
    result = document_info["recurrence_risk_score"]
    assert (result["score"], result["band"]) == (score, band)


def _symptomatic(**pathology) -> dict:
    document = copy.deepcopy(RECORD)
    document["pathology"].update(pathology)
    document["symptomatic"] = True
    return high_risk_information(Context.for_record(ScreeningRecord.model_validate(document)))


def test_high_risk_factors_present_absent_unknown() -> None:
    factors = info(size_mm=45, ki67_percent=5, lymphovascular_invasion=None)["high_risk_factors"]
    assert "size > 4 cm" in factors["present"] and "T3/T4" in factors["present"]
    assert "Ki-67 > 5 %" in factors["absent"]  # exactly 5 % is not > 5 %
    assert "lymphovascular invasion" in factors["unknown"]


def test_score_only_for_pancreas() -> None:
    assert "recurrence_risk_score" not in info(site="stomach", extent="submucosa", size_mm=8)
