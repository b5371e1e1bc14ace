"""CTCAE grading beyond the numeric boundaries: answers, review flags, notes, bad input, the tables."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nettrial.exceptions import ImplausibleValueError, InputError
from nettrial.safety.ctcae import grade, worst
from nettrial.safety.terms import find_term, terms
from tests.conftest import require_shared

SPEC_CSV = Path(__file__).parents[2] / "nettrial" / "safety" / "data" / "ctcae" / "v5.0" / "terms.csv"


def test_every_term_of_the_nci_table_has_grading_rules():
    with SPEC_CSV.open(encoding="utf-8", newline="") as handle:
        names = [row["term"] for row in csv.DictReader(handle)]
    assert len(names) == 52
    assert set(terms()) == set(names)
    for term in terms().values():
        assert term.routes or term.rules, term.name


def test_the_shipped_table_is_the_spec_table():
    """terms.csv is a verbatim copy of shared/spec/ctcae_v5_selected.csv."""
    spec = require_shared("spec/ctcae_v5_selected.csv")
    assert SPEC_CSV.read_text(encoding="utf-8") == spec.read_text(encoding="utf-8")


def test_result_names_term_version_grade_rule_and_text():
    result = grade("Alanine aminotransferase increased", 130, "U/L", uln=40, baseline=35)
    assert (result.term, result.version, result.grade) == ("Alanine aminotransferase increased", "5.0", 2)
    assert result.rule == "uln: grade 2 (> 3.0 x ULN)"
    assert result.meddra_code == "10001551"
    assert result.description.startswith(">3.0 - 5.0 x ULN")
    assert not result.needs_review
    assert result.to_dict()["inputs"]["baseline"] == 35


def test_missing_baseline_is_said_not_hidden():
    result = grade("Alanine aminotransferase increased", 130, "U/L", uln=40)
    assert result.grade == 2
    assert any("baseline not given" in note for note in result.notes)


def test_creatinine_baseline_route_wins_and_missing_baseline_is_noted():
    assert grade("Creatinine increased", 1.5, "mg/dL", uln=1.1, baseline=0.6).rule == (
        "baseline: grade 2 (> 1.5 x baseline)"
    )
    alone = grade("Creatinine increased", 1.5, "mg/dL", uln=1.1)
    assert alone.grade == 1
    assert "baseline not given: the baseline route was not applied" in alone.notes


def test_creatinine_in_umol_per_litre_is_graded_against_the_uln_in_the_same_unit():
    assert grade("Creatinine increased", 300, "umol/L", uln=97).grade == 3  # 3.09 x ULN


@pytest.mark.parametrize(
    ("value", "answer", "expected", "review"),
    [
        (250, None, 2, True),  # 4.2 x ULN: grade 2 asymptomatic, 3 with symptoms: ask
        (250, False, 2, False),
        (250, True, 3, False),
        (400, None, 3, True),  # 6.7 x ULN
        (400, True, 4, False),
        (100, None, 2, False),  # 1.67 x ULN: grade 2 whatever the answer
    ],
)
def test_lipase_symptoms(value, answer, expected, review):
    answers = {} if answer is None else {"pancreatitis_symptoms": answer}
    result = grade("Lipase increased", value, "U/L", uln=60, answers=answers)
    assert (result.grade, result.needs_review) == (expected, review)


@pytest.mark.parametrize(
    ("term", "answers", "expected", "review"),
    [
        ("Diarrhea", {"stools_over_baseline": 3}, 1, False),
        ("Diarrhea", {"stools_over_baseline": 4}, 2, False),
        ("Diarrhea", {"stools_over_baseline": 6}, 2, False),
        ("Diarrhea", {"stools_over_baseline": 7}, 3, False),
        ("Diarrhea", {"stools_over_baseline": 2, "adl_limitation": "self_care"}, 3, False),
        ("Diarrhea", {"ostomy_output_increase": "moderate"}, 2, False),
        ("Diarrhea", {"life_threatening": True}, 4, False),
        ("Diarrhea", {"death": True}, 5, True),
        ("Palmar-plantar erythrodysesthesia syndrome", {"skin_changes": "minimal_without_pain"}, 1, False),
        ("Palmar-plantar erythrodysesthesia syndrome", {"skin_changes": "with_pain"}, 2, False),
        ("Hand-foot skin reaction", {"skin_changes": "severe_with_pain"}, 3, False),
        ("Fatigue", {"relieved_by_rest": True}, 1, False),
        ("Fatigue", {"relieved_by_rest": False}, 2, False),
        ("Fatigue", {"relieved_by_rest": False, "adl_limitation": "self_care"}, 3, False),
        ("Gastric hemorrhage", {"symptoms": "mild"}, 1, False),
        ("Upper gastrointestinal hemorrhage", {"intervention": "medical"}, 2, False),
        ("Lower gastrointestinal hemorrhage", {"transfusion_indicated": True}, 3, False),
        ("Epistaxis", {"life_threatening": True}, 4, False),
        ("Thromboembolic event", {"intervention": "not_indicated"}, 1, False),
        ("Thromboembolic event", {"intervention": "urgent"}, 3, False),
        ("Arterial thromboembolism", {"life_threatening": False}, 3, False),  # no grade below 3
        ("Nephrotic syndrome", {"hospitalization_indicated": True}, 3, False),
        ("Acute kidney injury", {"dialysis_indicated": True}, 4, False),
        ("Colonic perforation", {"intervention": "not_indicated"}, 2, False),
        ("Gastric perforation", {"intervention": "invasive"}, 3, False),
        ("Heart failure", {"nyha_class": "II"}, 2, False),
        ("Heart failure", {"nyha_class": "IV"}, 3, False),
        ("Hyperglycemia", {"glycaemic_treatment": "insulin"}, 3, False),
        ("Hypothyroidism", {"symptoms": "none"}, 1, False),
        ("Nausea", {"oral_intake": "inadequate"}, 3, False),
        ("Febrile neutropenia", {"anc_per_mm3": 900, "max_temperature_c": 38.4}, 3, False),
        ("Febrile neutropenia", {"anc_per_mm3": 900, "max_temperature_c": 38.3}, None, True),
        ("Febrile neutropenia", {"anc_per_mm3": 1000, "sustained_fever": True}, None, True),
        ("Febrile neutropenia", {"anc_per_mm3": 999, "sustained_fever": True}, 3, False),
    ],
)
def test_clinical_terms_from_answers(term, answers, expected, review):
    result = grade(term, answers=answers)
    assert (result.grade, result.needs_review) == (expected, review), result.explain()


@pytest.mark.parametrize(
    ("term", "value", "unit", "limits", "answers", "expected"),
    [
        ("Anemia", 9.0, "g/dL", {"lln": 12}, {"transfusion_indicated": True}, 3),
        ("Anemia", 7.0, "g/dL", {"lln": 12}, {"life_threatening": True}, 4),
        ("Hypoalbuminemia", 1.5, "g/dL", {"lln": 3.5}, {"life_threatening": True}, 4),
        ("Hyperuricemia", 9, "mg/dL", {"uln": 7}, {"physiologic_consequences": True}, 3),
    ],
)
def test_grades_left_to_clinical_judgement_are_suggested_and_flagged(
    term, value, unit, limits, answers, expected
):
    result = grade(term, value, unit, answers=answers, **limits)
    assert result.grade == expected
    assert result.needs_review == (expected != 3 or term == "Hyperuricemia")
    if result.needs_review:
        assert "clinical judgement" in result.review_reasons[0]


def test_hyperuricaemia_grade_3_needs_the_value_above_uln():
    assert grade("Hyperuricemia", 6, "mg/dL", uln=7, answers={"physiologic_consequences": True}).grade == 0


def test_hypertension_treatment_answers_raise_the_reading_grade():
    assert grade("Hypertension", "130/85", "mmHg").grade == 1
    assert (
        grade(
            "Hypertension", "130/85", "mmHg", answers={"hypertension_treatment": "started_or_changed"}
        ).grade
        == 2
    )
    assert (
        grade(
            "Hypertension", "130/85", "mmHg", answers={"hypertension_treatment": "more_than_one_drug"}
        ).grade
        == 3
    )
    assert grade("Hypertension", "200/120", "mmHg").grade == 3  # a reading alone: at most grade 3
    assert grade("Hypertension", answers={"life_threatening": True}).grade == 4


def test_ionized_calcium_has_its_own_cut_points():
    assert grade("Hypocalcemia", 0.95, "mmol/L", lln=1.1, answers={"calcium_measure": "ionized"}).grade == 2
    assert grade("Hypocalcemia", 0.95, "mmol/L", lln=2.1).grade == 4  # read as corrected calcium
    assert "calcium_measure not given" in grade("Hypocalcemia", 0.95, "mmol/L", lln=2.1).notes[0]


def test_inr_on_anticoagulation_uses_the_baseline():
    assert grade("INR increased", 2.0, "INR").grade == 2
    on = {"on_anticoagulation": True}
    assert grade("INR increased", 2.0, "INR", baseline=2.5, answers=on).grade == 0
    with pytest.raises(InputError) as error:
        grade("INR increased", 2.0, "INR", answers=on)
    assert error.value.field == "baseline"


def test_proteinuria_24_hour_collection_overrides_the_dipstick():
    dipstick = grade("Proteinuria", "4+", "dipstick")
    collection = grade("Proteinuria", 1.2, "g/24h")
    assert (dipstick.grade, collection.grade) == (3, 2)
    assert worst([dipstick, collection]) is collection
    assert worst([dipstick, grade("Platelet count decreased", 40, "10^9/L", lln=150)]).grade == 3


def test_a_value_in_an_unpaired_unit_is_converted_and_the_conversion_noted():
    result = grade("Hypertriglyceridemia", 3.5, "mmol/L")
    assert result.grade == 2
    converted = grade("Blood bilirubin increased", 40, "umol/L", uln=20.5)
    assert converted.grade == 2  # 1.95 x ULN: relative, no conversion needed
    assert not any("converted" in n for n in converted.notes)


def test_units_cells_per_microlitre_read_as_per_cubic_millimetre():
    assert grade("Neutrophil count decreased", 1400, "cells/uL", lln=1800).rule == "/mm3: grade 2 (< 1500)"
    assert grade("Platelet count decreased", 49, "10^3/uL", lln=150).rule == "10^9/L: grade 3 (< 50.0)"


@pytest.mark.parametrize(
    ("call", "field", "words"),
    [
        (lambda: grade("ALT raised", 1, "U/L", uln=40), "term", "Alanine aminotransferase increased"),
        (lambda: grade("Alanine aminotransferase increased", 130, "mg/dL", uln=40), "value.unit", "U/L"),
        (lambda: grade("Alanine aminotransferase increased", 130, None, uln=40), "unit", "required"),
        (lambda: grade("Alanine aminotransferase increased", 130, "U/L"), "uln", "ULN"),
        (lambda: grade("Neutrophil count decreased", 1.7, "10^9/L"), "lln", "LLN"),
        (lambda: grade("Cholesterol high", 250, "mg/dL"), "uln", "ULN"),
        (lambda: grade("Alanine aminotransferase increased", 130, "U/L", uln=-4), "uln", "greater than 0"),
        (lambda: grade("Anemia", 120, "g/dL", lln=12), "value.value", "g/L"),
        (lambda: grade("Weight loss", 60, "kg"), "baseline", "baseline"),
        (lambda: grade("Diarrhea", 5, "stools"), "value", "answers"),
        (lambda: grade("Diarrhea"), "answers", "answers"),
        (lambda: grade("Diarrhea", answers={"stools": 5}), "answers.stools", "stools_over_baseline"),
        (
            lambda: grade("Diarrhea", answers={"adl_limitation": "some"}),
            "answers.adl_limitation",
            "self_care",
        ),
        (lambda: grade("Fatigue", answers={"relieved_by_rest": "maybe"}), "answers.relieved_by_rest", "true"),
        (
            lambda: grade("Diarrhea", answers={"stools_over_baseline": 90}),
            "answers.stools_over_baseline",
            "90",
        ),
        (lambda: grade("Hypertension", "150", "mmHg"), "value", "systolic/diastolic"),
        (lambda: grade("Hypertension", "90/150", "mmHg"), "value", "diastolic"),
        (lambda: grade("Proteinuria", "5+", "dipstick"), "value", "4+"),
        (lambda: grade("Anemia", 9, "g/dL", lln=12, version="9.9"), "version", "5.0"),
    ],
)
def test_bad_input_names_the_field(call, field, words):
    with pytest.raises(InputError) as error:
        call()
    assert error.value.field == field
    assert words in str(error.value)


def test_implausible_value_is_its_own_error():
    with pytest.raises(ImplausibleValueError, match="looks like g/L"):
        grade("Anemia", 120, "g/dL", lln=12)


def test_aliases_are_exact_names_reported_under_the_ctcae_term():
    assert find_term("anaemia").name == "Anemia"
    assert find_term("ALT increased").name == "Alanine aminotransferase increased"
    assert grade("Diarrhoea", answers={"stools_over_baseline": 2}).term == "Diarrhea"
