"""The same engine, a different (invented) protocol: verdicts follow that protocol's file.

``made_up_study.yaml`` (NCT09999999) has other thresholds and windows than NCT07279532: age 21-75,
ANC >= 2.0, platelets >= 150, Hb >= 9 g/dL, bilirubin <= 1.0 x ULN, ALT <= 3 x ULN, CrCl >= 50,
labs no older than 7 days, surgery window 42 days, MI window 6 months, NYHA III-IV only, and an OR
inside its disease criterion (stage IV G1/G2, or the investigator's attestation).
Records are the scenario bases of ``tests/eligibility/scenarios/_bases.yaml``, patched.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from nettrial.eligibility.evaluate import evaluate
from nettrial.eligibility.record import ScreeningRecord
from nettrial.eligibility.verdicts import EligibilityResult
from nettrial.protocol.load import load_protocol
from tests.eligibility.test_scenarios import build_document

MADE_UP = load_protocol(Path(__file__).parent / "made_up_study.yaml")
BUILT_IN = load_protocol()
# Base (female, 60 y): resection 2026-01-20, labs 2026-02-24. A first dose on 2026-03-03 puts the
# resection exactly 42 days back and the labs exactly 7 days back.
FIRST_DOSE = dt.datetime(2026, 3, 3, 9, 0)
EX4_NO = {"EX4": {"answer": "no", "by": "Dr Roe", "at": "2026-02-25T10:00:00"}}
STAGE_IV = {"pathology": {"metastasis": ["liver"]}, "liver_metastases": True}


def both(patch: dict[str, Any] | None = None, base: str = "eligible_base", first_dose=FIRST_DOSE):
    """The record evaluated under the built-in protocol and under the made-up one."""
    patch = {"attestations": EX4_NO, **STAGE_IV, **(patch or {})}
    record = ScreeningRecord.model_validate(build_document({"base": base, "patch": patch}))
    return evaluate(record, BUILT_IN, first_dose), evaluate(record, MADE_UP, first_dose)


def truth(result: EligibilityResult, criterion: str) -> str:
    return result.verdict(criterion).truth.value


def test_made_up_protocol_loads_with_its_own_settings() -> None:
    assert MADE_UP.identity.nct_id == "NCT09999999"
    assert [c.id for c in MADE_UP.eligibility.criteria if c.kind == "inclusion"] == ["IN1", "IN2", "IN3"]
    assert MADE_UP.criterion("EX1").rule.within.days == 42  # resolved from $surgery_window_days
    assert MADE_UP.criterion("EX2").rule.any[0].within.months == 6
    assert MADE_UP.treatment.cycle_days == 21


def test_a_record_can_be_eligible_under_the_made_up_protocol() -> None:
    _, made_up = both()
    assert made_up.protocol == "NCT09999999"
    assert {v.criterion: v.truth.value for v in made_up.verdicts} == {
        "IN1": "MET",
        "IN2": "MET",  # labs exactly 7 days old: still fresh
        "IN3": "MET",  # stage IV G2 through the tumour branch
        "EX1": "NOT_MET",  # resection exactly 42 days before
        "EX2": "NOT_MET",
        "EX3": "NOT_MET",
        "EX4": "NOT_MET",
    }
    assert made_up.decision.value == "ELIGIBLE"
    assert made_up.earliest_first_dose == dt.date(2026, 3, 3)  # 2026-01-20 + 42 days


@pytest.mark.parametrize(
    ("patch", "built_in_i5", "made_up_in2"),
    [
        ({"labs": {"anc": {"value": 1.8}}}, "MET", "NOT_MET"),  # 1.8 >= 1.5 but < 2.0
        ({"labs": {"anc": {"value": 2.0}}}, "MET", "MET"),
        ({"labs": {"platelets": {"value": 120}}}, "MET", "NOT_MET"),  # limit 150000/mm3 = 150 x 10^9/L
        ({"labs": {"platelets": {"value": 150}}}, "MET", "MET"),
        ({"labs": {"haemoglobin": {"value": 85, "unit": "g/L"}}}, "MET", "NOT_MET"),  # 8.5 < 9 g/dL
        ({"labs": {"bilirubin": {"value": 25.2, "uln": 21}}}, "MET", "NOT_MET"),  # 1.2 x ULN
        ({"labs": {"bilirubin": {"value": 21, "uln": 21}}}, "MET", "MET"),  # exactly 1.0 x ULN
        (  # ALT 2.75 x ULN without liver metastases: > 2.5 (NCT07279532) but <= 3 (made-up)
            {
                "labs": {"alt": {"value": 110, "uln": 40}},
                "liver_metastases": False,
                "pathology": {"metastasis": []},
            },
            "NOT_MET",
            "MET",
        ),
        ({"labs": {"anc": {"date": "2026-02-21"}}}, "MET", "UNKNOWN"),  # 10 days old: > 7, <= 14
        (  # blood transfusion 18 days before: outside 14 days, inside 21
            {"supportive_care": {"items": [{"kind": "blood_transfusion", "date": "2026-02-13"}]}},
            "MET",
            "NOT_MET",
        ),
    ],
)
def test_lab_thresholds_follow_each_protocol(patch, built_in_i5, made_up_in2) -> None:
    built_in, made_up = both(patch)
    assert (truth(built_in, "I5"), truth(made_up, "IN2")) == (built_in_i5, made_up_in2)


def test_creatinine_clearance_operator_and_limit_come_from_the_file() -> None:
    # Man 68 y, 50 kg, SCr 1.0 mg/dL (ULN 0.6: 1.67 x ULN): CrCl = 72 x 50 / 72 = 50.0 mL/min.
    # NCT07279532 needs > 60 (or creatinine <= 1.5 x ULN): NOT_MET; made-up needs >= 50: MET.
    patch = {
        "identity": {"weight": {"value": 50}},
        "labs": {"creatinine": {"value": 1.0, "unit": "mg/dL", "uln": 0.6}},
    }
    built_in, made_up = both(patch, base="male_base")
    assert (truth(built_in, "I5"), truth(made_up, "IN2")) == ("NOT_MET", "MET")


@pytest.mark.parametrize(
    ("date_of_birth", "built_in_i2", "made_up_in1"),
    [
        ("2005-02-19", "MET", "NOT_MET"),  # 20 on the consent date 2026-02-18
        ("2005-02-18", "MET", "MET"),  # 21 that day
        ("1950-02-18", "MET", "NOT_MET"),  # 76
        ("1950-02-19", "MET", "MET"),  # 75, the day before the 76th birthday
    ],
)
def test_age_band_follows_each_protocol(date_of_birth, built_in_i2, made_up_in1) -> None:
    built_in, made_up = both({"identity": {"date_of_birth": date_of_birth}})
    assert (truth(built_in, "I2"), truth(made_up, "IN1")) == (built_in_i2, made_up_in1)


def test_surgery_30_days_before_is_fine_for_nct07279532_but_excluded_here() -> None:
    built_in, made_up = both({"surgery": {"date": "2026-02-01"}})  # 30 days before 2026-03-03
    assert truth(built_in, "E1") == "NOT_MET"
    assert built_in.verdict("E1").earliest_first_dose == dt.date(2026, 3, 1)  # + 28
    assert truth(made_up, "EX1") == "MET"
    assert made_up.decision.value == "INELIGIBLE"
    assert made_up.earliest_first_dose == dt.date(2026, 3, 15)  # 2026-02-01 + 42


def test_surgery_41_days_before_is_inside_the_42_day_window() -> None:
    _, made_up = both(first_dose=dt.datetime(2026, 3, 2, 9, 0))  # resection 2026-01-20
    assert truth(made_up, "EX1") == "MET"
    assert made_up.earliest_first_dose == dt.date(2026, 3, 3)


@pytest.mark.parametrize(
    ("event", "built_in_e4", "made_up_ex2"),
    [
        ({"kind": "myocardial_infarction", "date": "2025-07-03"}, "MET", "NOT_MET"),  # 8 months
        ({"kind": "myocardial_infarction", "date": "2025-09-03"}, "MET", "NOT_MET"),  # exactly 6 months
        ({"kind": "myocardial_infarction", "date": "2025-09-04"}, "MET", "MET"),  # inside 6 months
        ({"kind": "heart_failure", "nyha_class": "II"}, "MET", "NOT_MET"),
        ({"kind": "heart_failure", "nyha_class": "III"}, "MET", "MET"),
    ],
)
def test_cardiac_windows_follow_each_protocol(event, built_in_e4, made_up_ex2) -> None:
    built_in, made_up = both({"history_events": [event]})
    assert (truth(built_in, "E4"), truth(made_up, "EX2")) == (built_in_e4, made_up_ex2)


@pytest.mark.parametrize(
    ("answer", "expected_in3", "decision"),
    [("yes", "MET", "ELIGIBLE"), ("no", "NOT_MET", "INELIGIBLE"), (None, "UNKNOWN", "INCOMPLETE")],
)
def test_or_inside_the_disease_criterion(answer, expected_in3, decision) -> None:
    # Stage III G2: the tumour branch (stage IV G1/G2) fails; the attestation decides.
    attestations = dict(EX4_NO)
    if answer:
        attestations["IN3"] = {"answer": answer, "by": "Dr Roe", "at": "2026-02-25T10:00:00"}
    built_in, made_up = both(
        {"attestations": attestations, "pathology": {"metastasis": []}, "liver_metastases": False}
    )
    assert truth(built_in, "I3") == "MET"  # stage III G2 is what NCT07279532 wants
    assert truth(made_up, "IN3") == expected_in3
    assert made_up.decision.value == decision
