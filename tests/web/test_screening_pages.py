"""Screening in a real browser: a new patient, the record, eligibility, enrolment; who sees what.

The scenario follows the issue: platelets 80 x 10^9/L make the reference patient INELIGIBLE (I5 NOT
MET, with the platelet result as evidence); corrected to 210 she is ELIGIBLE and is enrolled as
NET-001. Everything else is the eligible reference record (tests/eligibility/eligible_record.json).
"""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from nettrial.store.models import User
from nettrial.web.record_form import form_values
from tests import factories
from tests.web.conftest import shot, sign_in

REFERENCE = json.loads(factories.ELIGIBLE_RECORD.read_text(encoding="utf-8"))


def _user_id(live, role: str) -> int:
    with live.db.session(write=False) as session:
        return session.scalar(select(User.id).where(User.username == role))


def fill_record(page, changes: dict[str, str]) -> None:
    """Fill the record form with the reference record and ``changes`` (form field name -> value)."""
    values = form_values(REFERENCE, factories.PROTOCOL) | changes
    for name, value in values.items():
        field = page.locator(f'[name="{name}"]')
        if field.count() == 0:
            continue
        kind = field.evaluate("e => e.tagName === 'SELECT' ? 'select' : e.type")
        if kind == "select":
            field.select_option(value)
        elif kind == "checkbox":
            field.set_checked(bool(value))
        else:
            field.fill(value)


def _verdict(page, criterion: str) -> str:
    return page.locator(f"#criterion-{criterion} td.verdict").inner_text().strip()


def test_a_coordinator_screens_evaluates_corrects_and_enrols_a_patient(page, live):
    sign_in(page, live, "coordinator")
    page.get_by_role("link", name="Screening", exact=True).click()
    page.get_by_label("Site").select_option("ZJU2")
    page.get_by_label("Full name").fill("Li Wei")
    page.get_by_label("Medical record number").fill("MRN-7731")
    page.get_by_label("Date of birth").fill("1965-05-10")
    page.get_by_label("Sex").select_option("female")
    shot(page, "01-new-patient")
    page.get_by_role("button", name="Add patient").click()
    page.wait_for_url(re.compile(r".*/screening/\d+\?created=1$"))
    assert "Patient S-0001" in page.get_by_role("heading", level=1).inner_text()

    # Platelets 80 x 10^9/L, the rest as the reference record; fields are reached by their labels.
    fill_record(page, {"labs.platelets.value": "80"})
    assert page.get_by_label("Platelets: Value", exact=True).input_value() == "80"
    assert page.get_by_label("Platelets: Unit", exact=True).input_value() == "10^9/L"
    page.get_by_role("button", name="Save screening record").click()
    assert "Screening record version 1 saved." in page.get_by_role("status").inner_text()
    # The stage panel, computed from the saved pathology: AJCC V9 T2 N1 M0, stage III; NET G2.
    assert page.locator("#stage-group").inner_text() == "III"
    assert page.locator("#stage-tnm").inner_text() == "T2 N1 M0"
    assert "NET G2" in page.locator("#stage-grade").inner_text()
    page.locator("#stage-panel summary").click()  # the trace, on request
    assert "N1-regional-nodes-positive" in page.locator("#stage-panel details").inner_text()
    shot(page, "02-record-saved-stage-III")

    page.get_by_role("button", name="Evaluate eligibility").click()
    page.wait_for_url(re.compile(r".*evaluated=1#checklist$"))
    assert page.locator("#decision").inner_text() == "Ineligible"
    assert _verdict(page, "I5") == "NOT MET"
    evidence = page.locator("#criterion-I5").inner_text()
    assert "labs.platelets = 80 10^9/L (2026-02-24); needs >= 100 10^9/L" in evidence
    assert page.locator("#failed").inner_text() == "I5"
    assert page.locator("#earliest-first-dose").inner_text().startswith("2026-02-17")
    assert _verdict(page, "I1") == "MET" and _verdict(page, "E9") == "NOT MET"
    assert page.get_by_role("button", name="Enrol").count() == 0  # a coordinator cannot enrol INELIGIBLE
    shot(page, "03-ineligible-I5")

    # A unit mistake: haemoglobin 120 g/dL. The message sits next to the field; what was typed stays.
    fill_record(page, {"labs.platelets.value": "210", "labs.haemoglobin.value": "120"})
    page.get_by_label("Haemoglobin: Unit", exact=True).select_option("g/dL")
    page.get_by_role("button", name="Save screening record").click()
    field = page.get_by_label("Haemoglobin: Value", exact=True)
    error = page.locator("#f-labs-haemoglobin-value-error")
    assert "120 g/dL is not a plausible haemoglobin" in error.inner_text()
    assert "it looks like g/L" in error.inner_text()
    assert field.get_attribute("aria-invalid") == "true"
    assert "f-labs-haemoglobin-value-error" in field.get_attribute("aria-describedby")
    assert field.evaluate("e => e === document.activeElement")  # focus lands on the field in error
    assert field.input_value() == "120"
    assert page.get_by_label("Platelets: Value", exact=True).input_value() == "210"
    assert page.get_by_label("Procedure").input_value() == "distal pancreatectomy"
    assert "Version 1," in page.locator("#record").inner_text()  # nothing was saved
    shot(page, "04-haemoglobin-unit-error")

    page.get_by_label("Haemoglobin: Value", exact=True).fill("118")
    page.get_by_label("Haemoglobin: Unit", exact=True).select_option("g/L")
    page.get_by_role("button", name="Save screening record").click()
    assert "Screening record version 2 saved." in page.get_by_role("status").inner_text()
    assert "The record has changed since this evaluation" in page.locator("#checklist").inner_text()
    page.get_by_role("button", name="Evaluate eligibility").click()
    assert page.locator("#decision").inner_text() == "Eligible"
    assert _verdict(page, "I5") == "MET"
    assert page.locator("#failed").inner_text() == "–"
    shot(page, "05-eligible")

    page.get_by_role("button", name="Enrol").click()
    page.wait_for_url(re.compile(r".*/participants/NET-001$"))
    page.goto(f"{live.url}/screening")
    row = page.get_by_role("row", name=re.compile("S-0001"))
    assert "Li Wei" in row.inner_text() and "NET-001" in row.inner_text() and "Eligible" in row.inner_text()
    shot(page, "06-screening-log")


def test_the_stage_panel_follows_the_pathology_as_it_is_typed(page, live):
    patient_id = factories.patient(live.db, _user_id(live, "coordinator"))
    sign_in(page, live, "investigator")
    page.goto(f"{live.url}/screening/{patient_id}")
    assert "Enter the primary site" in page.locator("#stage-panel").inner_text()
    fill_record(page, {})  # the reference pathology, not saved
    page.locator("#stage-group").filter(has_text="III").wait_for()
    page.get_by_label("Regional nodes positive").fill("0")
    page.get_by_label("Regional nodes positive").press("Tab")  # change event: screening.js asks again
    page.locator("#stage-group").filter(has_text=re.compile("^II$")).wait_for()
    assert page.locator("#stage-tnm").inner_text() == "T2 N0 M0"
    page.get_by_label("Ki-67 index (%)").fill("140")
    page.get_by_label("Ki-67 index (%)").press("Tab")
    page.locator("#stage-error").wait_for()
    assert "Ki-67 index (%)" in page.locator("#stage-error").inner_text()
    shot(page, "01-stage-preview-refused")


def test_an_investigator_may_enrol_an_ineligible_patient_with_a_reason(page, live):
    coordinator = _user_id(live, "coordinator")
    patient_id = factories.patient(live.db, coordinator)
    sign_in(page, live, "investigator")
    page.goto(f"{live.url}/screening/{patient_id}")
    fill_record(page, {"labs.platelets.value": "80"})
    page.get_by_role("button", name="Save screening record").click()
    page.get_by_role("button", name="Evaluate eligibility").click()
    page.get_by_role("button", name="Enrol").click()  # no reason: refused, with the store's message
    assert "an investigator may override with a reason" in page.get_by_role("alert").inner_text()
    reason = page.get_by_label("Override reason (investigator only)")
    assert reason.get_attribute("aria-invalid") == "true"
    reason.fill("Platelets recovering; haematology review 2026-02-26")
    shot(page, "01-override-reason")
    page.get_by_role("button", name="Enrol").click()
    page.wait_for_url(re.compile(r".*/participants/NET-001$"))


def test_a_monitor_reads_the_screening_pages_without_any_button_to_change_them(page, live):
    patient_id = factories.eligible_patient(live.db, _user_id(live, "coordinator"), name="Wang Fang")
    sign_in(page, live, "monitor")
    page.goto(f"{live.url}/screening")
    assert page.get_by_role("heading", name="New patient").count() == 0
    assert "Wang Fang" in page.inner_text("main")
    page.goto(f"{live.url}/screening/{patient_id}")
    for name in ("Save screening record", "Evaluate eligibility", "Enrol", "Add patient"):
        assert page.get_by_role("button", name=name).count() == 0
    assert page.locator("main form").count() == 0
    assert page.locator("#decision").inner_text() == "Eligible"
    assert page.locator("#stage-group").inner_text() == "III"
    assert "distal pancreatectomy" in page.inner_text("#record")
    shot(page, "01-read-only")


def test_a_statisticians_screening_pages_show_no_name_or_date_of_birth(page, live):
    coordinator = _user_id(live, "coordinator")
    factories.enrolled(live.db, coordinator, name="Zhao Min", dob="1962-08-14")
    patient_id = factories.patient(live.db, coordinator, name="Sun Li", dob="1970-01-30")
    sign_in(page, live, "statistician")
    page.goto(f"{live.url}/screening")
    seen = page.inner_text("body") + page.content()
    page.goto(f"{live.url}/screening/1")
    assert page.locator("#decision").inner_text() == "Eligible"
    assert "born 1962," in page.locator("#criterion-I2").inner_text()  # the year only
    seen += page.inner_text("body") + page.content()
    shot(page, "01-pseudonymised")
    page.goto(f"{live.url}/screening/{patient_id}")
    seen += page.inner_text("body") + page.content()
    for personal in ("Zhao Min", "1962-08-14", "MRN-Zhao Min", "Sun Li", "1970-01-30", "MRN-Sun Li"):
        assert personal not in seen
    assert "S-0001" in seen and "1962" in seen
    assert page.locator("main form").count() == 0
