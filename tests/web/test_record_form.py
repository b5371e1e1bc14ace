"""The screening record form: a record survives the trip through the form, sections the form does not
show are kept, blank means not recorded, and an error of the record finds its form field."""

from __future__ import annotations

import copy
import json

import pytest
from pydantic import ValidationError

from nettrial.eligibility.io import validation_error
from nettrial.eligibility.record import ScreeningRecord
from nettrial.exceptions import InputError
from nettrial.web.record_form import form_field, form_values, record_from_form, row_count
from nettrial.web.stage_panel import stage_panel
from tests import factories

REFERENCE = json.loads(factories.ELIGIBLE_RECORD.read_text(encoding="utf-8"))
PROTOCOL = factories.PROTOCOL
BLANK_FIRST_READING = {f"blood_pressure.0.{p}": "" for p in ("date", "systolic", "diastolic", "on_treatment")}
THIRD_READING_INVERTED = {
    "blood_pressure.2.date": "2026-02-21",
    "blood_pressure.2.systolic": "120",
    "blood_pressure.2.diastolic": "130",
}


def _validated(document: dict) -> dict:
    return ScreeningRecord.model_validate(document).model_dump(mode="json", exclude_none=True)


def test_the_reference_record_survives_the_form():
    values = form_values(REFERENCE, PROTOCOL)
    assert values["labs.platelets.value"] == "210" and values["labs.platelets.unit"] == "10^9/L"
    assert values["planned_first_dose.date"] == "2026-03-02" and values["planned_first_dose.time"] == "09:00"
    assert values["pathology.metastasis"] == "none" and values["consent.signed"] == "yes"
    assert values["attestations.E9.at"] == "2026-02-25T10:00"
    posted = {k: v for k, v in values.items() if v and not (k.endswith(".reviewed") and not v)}
    identity = {"patient_id": "S-001", "date_of_birth": "1965-05-10", "sex": "female"}
    parsed = record_from_form(posted, {"identity": identity}, PROTOCOL)
    assert _validated(parsed.document) == _validated(REFERENCE)


def test_what_the_form_does_not_show_is_kept_from_the_previous_version():
    previous = copy.deepcopy(REFERENCE)
    previous["labs"].append({"test": "inr", "value": 1.1, "unit": "INR", "date": "2026-02-24"})
    previous["labs"][1]["lln"] = 150
    previous["supportive_care"]["items"] = [{"kind": "growth_factor", "date": "2026-01-02"}]
    previous["history"]["events"] = [{"kind": "heart_failure", "date": "2020-01-01", "nyha_class": "I"}]
    previous["pathology"]["histology"] = "8240/3"
    values = form_values(previous, PROTOCOL)
    assert row_count(values, "history.events") == 3  # the recorded event and two empty rows
    values["history.events.0.note"] = "compensated"
    document = record_from_form(values, previous, PROTOCOL).document
    assert {"test": "inr", "value": 1.1, "unit": "INR", "date": "2026-02-24"} in document["labs"]
    assert next(lab for lab in document["labs"] if lab["test"] == "platelets")["lln"] == 150
    assert document["supportive_care"]["items"] == previous["supportive_care"]["items"]
    assert document["history"]["events"] == [
        {"kind": "heart_failure", "date": "2020-01-01", "nyha_class": "I", "note": "compensated"}
    ]
    assert document["pathology"]["histology"] == "8240/3"


def test_a_blank_field_means_not_recorded():
    values = form_values(REFERENCE, PROTOCOL) | {
        "pathology.ki67_percent": "",
        "consent.signed": "",
        "labs.anc.value": "",
        "labs.anc.date": "",
        "attestations.E9.answer": "",
        "attestations.E9.by": "",
        "attestations.E9.at": "",
        "planned_first_dose.time": "",
    }
    values.pop("history.reviewed")  # an unticked box is not posted
    document = record_from_form(values, REFERENCE, PROTOCOL).document
    assert "ki67_percent" not in document["pathology"] and "signed" not in document["consent"]
    assert "anc" not in {lab["test"] for lab in document["labs"]}
    assert "E9" not in document.get("attestations", {})
    assert document["planned_first_dose"] == "2026-03-02" and document["history"]["reviewed"] is False


def _refusal(values: dict[str, str]) -> tuple[InputError, object]:
    parsed = record_from_form(values, {"identity": {"patient_id": "S-0001"}}, PROTOCOL)
    with pytest.raises(ValidationError) as caught:
        ScreeningRecord.model_validate(parsed.document)
    return validation_error(caught.value), parsed


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"labs.haemoglobin.value": "120", "labs.haemoglobin.unit": "g/dL"}, "labs.haemoglobin.value"),
        ({"labs.creatinine.value": "abc"}, "labs.creatinine.value"),
        (BLANK_FIRST_READING | THIRD_READING_INVERTED, "blood_pressure.2.diastolic"),
        ({"history.events.1.date": "2025-01-01"}, "history.events.1.kind"),
        ({"pathology.ki67_percent": "140"}, "pathology.ki67_percent"),
        ({"attestations.I4.answer": "yes"}, "attestations.I4.by"),
        ({"identity.weight.value": "5"}, "identity.weight.value"),
        ({"planned_first_dose.date": "02/03/2026"}, "planned_first_dose.date"),
    ],
)
def test_an_error_of_the_record_is_shown_next_to_its_form_field(changes, field):
    values = form_values(REFERENCE, PROTOCOL) | changes
    error, parsed = _refusal(values)
    assert form_field(error, parsed) == field, error


def test_the_stage_panel_stages_the_reference_pathology_and_names_a_refused_field():
    panel = stage_panel(REFERENCE["pathology"])
    assert (panel.staging.stage_group, panel.staging.t, panel.staging.n, panel.staging.m) == (
        "III",
        "T2",
        "N1",
        "M0",
    )
    assert panel.grade.classification == "NET G2"
    refused = stage_panel(REFERENCE["pathology"] | {"extent": "lung"})
    assert refused.error_field == "pathology.extent" and "not an extent for pancreas" in refused.error
