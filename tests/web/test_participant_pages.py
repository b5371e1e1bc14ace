"""A participant's pages in a real browser: the issue's safety scenario, read-only roles, privacy, errors.

The scenario (issue): the coordinator records the first dosing period at level 0; records a grade 3
Hypertension and sees, before saving, the recommendation to interrupt (rule hypertension-grade-3,
resume at level -1); saves it; stops the period as an interruption; corrects the event's grade with
a reason and finds the correction in the event's history. The monitor sees the same page without a
form or a button, and a forged post is refused; the statistician sees no name and no date of birth.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from nettrial.store.models import User
from tests import factories
from tests.web.conftest import SCREENSHOTS, shot, sign_in

PARTICIPANT = "/participants/NET-001"
UNLABELLED = """() => [...document.querySelectorAll(
    'main input:not([type=hidden]), main select, main textarea')].filter(e => e.labels.length === 0)
    .map(e => e.name)"""


def user_id(live, username: str) -> int:
    with live.db.session(write=False) as session:
        return session.scalar(select(User.id).where(User.username == username))


@pytest.fixture
def study(live):
    """The service with one enrolled participant, NET-001 (planned first dose 2026-03-02)."""
    factories.enrolled(live.db, user_id(live, "coordinator"))
    return live


def _first_dose(page, live) -> None:
    page.goto(f"{live.url}{PARTICIPANT}")
    dosing = page.locator("#dosing")
    dosing.get_by_label("Dose level").select_option("0")
    dosing.get_by_label("First day dosed").fill("2026-03-02")
    dosing.get_by_role("button", name="Add dosing period").click()
    expect(page.get_by_role("status")).to_have_text("The dosing period was recorded.")


def _hypertension(form, grade: str = "3") -> None:
    form.get_by_label("CTCAE term").fill("Hypertension")
    form.get_by_label("CTCAE term").press("Tab")  # a change event, as a person leaving the field
    form.get_by_label("Grade", exact=True).select_option(grade)
    form.get_by_label("Onset").fill("2026-03-20")
    form.get_by_label("Relatedness to surufatinib").select_option("probable")
    form.get_by_label("Action taken").select_option("dose_interrupted")
    form.get_by_label("Outcome").select_option("recovering")


def _expect_interrupt(recommendation) -> None:
    expect(recommendation).to_contain_text("interrupt")
    expect(recommendation).to_contain_text("hypertension-grade-3")
    expect(recommendation).to_contain_text("resume at level -1")


def test_the_coordinator_records_an_event_sees_the_recommendation_first_and_corrects_it(page, study):
    live = study
    sign_in(page, live, "coordinator")
    _first_dose(page, live)
    dosing = page.locator("#dosing")
    expect(dosing.locator("#current-dose-level")).to_have_text("0")
    expect(dosing.locator("tbody tr")).to_have_count(1)
    expect(dosing.locator("tbody tr")).to_contain_text("2026-03-02")
    expect(page.locator("#visits tbody")).to_contain_text("C1D1")  # the schedule counts from the dose
    shot(page, "01-first-dose")

    # Before saving: the suggestion and the recommendation follow the term and grade (participant.js).
    form = page.locator("form[data-preview]")
    _hypertension(form)
    live_panel = page.locator("#ae-assessment")
    _expect_interrupt(live_panel.locator(".recommendation"))
    form.get_by_label(re.compile("^Antihypertensive treatment")).select_option("more_than_one_drug")
    expect(live_panel).to_contain_text("CTCAE suggests grade 3")
    # The Preview button does the same on the server (and without JavaScript): nothing is saved.
    form.get_by_role("button", name="Preview").click()
    _expect_interrupt(page.locator("#ae-assessment .recommendation"))
    expect(page.locator("#ae-assessment")).to_contain_text("at dose level 0")
    expect(page.locator("#adverse-events")).to_contain_text("No adverse event is recorded.")
    expect(page.get_by_label("CTCAE term")).to_have_value("Hypertension")  # what was entered is kept
    shot(page, "02-preview-before-saving")

    page.get_by_role("button", name="Save adverse event").click()
    expect(page.get_by_role("status").first).to_contain_text("The adverse event was saved.")
    _expect_interrupt(page.locator("#saved-recommendation"))
    expect(page.locator("#adverse-event-1")).to_contain_text("Hypertension")
    expect(page.locator("#adverse-event-1 td").nth(2)).to_have_text("3")
    shot(page, "03-saved-with-recommendation")

    # The investigator's decision: interrupt. The open period is stopped, with a reason for the record.
    stop = page.locator("form", has=page.get_by_role("button", name="Stop period"))
    stop.get_by_label("Last day dosed").fill("2026-03-20")
    stop.get_by_label("Why it stopped").select_option("interruption")
    stop.get_by_label("Adverse event").select_option("1")
    stop.get_by_label("Reason for the change").fill("Grade 3 hypertension: dosing interrupted")
    stop.get_by_role("button", name="Stop period").click()
    expect(page.get_by_role("status")).to_have_text("The dosing period was stopped.")
    expect(page.locator("#dosing tbody tr")).to_contain_text("interruption")
    expect(page.locator("#dosing")).to_contain_text("interrupted")
    expect(page.get_by_role("button", name="Stop period")).to_have_count(0)
    shot(page, "04-interrupted")

    # A correction needs a reason: refused without one, the message next to the field.
    page.get_by_role("link", name="Correct adverse event 1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Correct adverse event 1 of NET-001")
    page.get_by_label("Grade", exact=True).select_option("2")
    page.get_by_role("button", name="Save correction").click()
    reason = page.get_by_label("Reason for the change")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(reason).to_be_focused()
    expect(page.locator("#correct-reason-error")).to_have_text("Required: enter a value.")
    expect(page.get_by_label("Grade", exact=True)).to_have_value("2")
    shot(page, "05-correction-needs-a-reason")
    reason.fill("Source document: BP 150/95 on one drug, grade 2")
    page.get_by_role("button", name="Save correction").click()
    expect(page.get_by_role("status").first).to_contain_text("The correction was saved with its reason.")
    expect(page.locator("#adverse-event-1 td").nth(2)).to_have_text("2 (CTCAE: 3)")  # the answers said 3

    page.get_by_role("link", name="History adverse event 1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("History of adverse event 1")
    row = page.locator("table.history tbody tr", has=page.locator("code", has_text=re.compile("^grade$")))
    expect(row).to_have_count(2)  # entered as 3, then corrected
    cells = row.nth(1).locator("td")
    expect(cells.nth(0)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))
    expect(cells.nth(1)).to_have_text("coordinator")
    expect(cells.nth(2)).to_have_text("changed")
    expect(cells.nth(4)).to_have_text("3")
    expect(cells.nth(5)).to_have_text("2")
    expect(cells.nth(6)).to_have_text("Source document: BP 150/95 on one drug, grade 2")
    shot(page, "06-history")


def test_the_monitor_reads_without_a_form_or_a_button_and_a_forged_post_is_refused(page, study):
    live = study
    sign_in(page, live, "monitor")
    page.goto(f"{live.url}{PARTICIPANT}")
    main = page.locator("main")
    expect(main.get_by_role("heading", name="Participant NET-001")).to_be_visible()
    expect(main.locator("form")).to_have_count(0)
    expect(main.get_by_role("button")).to_have_count(0)
    expect(main.get_by_role("link", name=re.compile("^Correct"))).to_have_count(0)
    expect(main.get_by_role("link", name="History participant 1")).to_be_visible()  # audit.read
    shot(page, "01-read-only")

    token = page.locator("header input[name=csrf_token]").first.get_attribute("value")
    forged = page.request.post(
        f"{live.url}{PARTICIPANT}/dosing",
        form={"csrf_token": token, "dose_level": "0", "start_date": "2026-03-02"},
    )
    assert forged.status == 403
    assert "Not allowed" in forged.text()
    assert page.request.get(f"{live.url}{PARTICIPANT}/labs/1/correct").status == 403
    page.reload()
    expect(page.locator("#dosing")).to_contain_text("No dosing period is recorded.")


def test_the_statisticians_pages_show_no_name_and_no_date_of_birth(page, study):
    live = study
    sign_in(page, live, "statistician")
    for path in ("/participants", PARTICIPANT, "/queries", "/exports"):
        page.goto(f"{live.url}{path}")
        text = page.inner_text("main")
        assert "Test Patient" not in text and "1965-05-10" not in text and "MRN-" not in text, path
    page.goto(f"{live.url}{PARTICIPANT}")
    expect(page.locator("main")).to_contain_text("Year of birth")
    expect(page.locator("main form")).to_have_count(0)
    expect(
        page.locator("main").get_by_role("link", name=re.compile("^(History|Query|Correct)"))
    ).to_have_count(0)
    shot(page, "01-pseudonymised")
    assert page.request.get(f"{live.url}/history/participant/1").status == 403


def test_the_coordinator_sees_the_identity_the_statistician_does_not(page, study):
    sign_in(page, study, "coordinator")
    page.goto(f"{study.url}{PARTICIPANT}")
    expect(page.locator("main")).to_contain_text("Test Patient")
    expect(page.locator("main")).to_contain_text("1965-05-10")


def test_a_refused_form_keeps_what_was_entered_and_says_what_is_wrong_beside_the_field(page, study):
    live = study
    sign_in(page, live, "coordinator")
    page.goto(f"{live.url}{PARTICIPANT}")
    assert page.evaluate(UNLABELLED) == []  # every field of every form has its label
    labs = page.locator("#labs")
    labs.get_by_label("Test").select_option("alt")
    labs.get_by_label("Value").fill("150")
    expect(labs.get_by_label("Unit").locator("optgroup:not([hidden])")).to_have_count(1)  # ALT's units
    labs.get_by_label("Unit").select_option("U/L")
    labs.get_by_label("Upper limit of normal").fill("40")
    labs.get_by_label("Collected on").fill("2030-01-01")
    labs.get_by_role("button", name="Save laboratory result").click()
    collected = page.locator("#lab-collected_on")
    expect(collected).to_have_attribute("aria-invalid", "true")
    expect(collected).to_be_focused()
    expect(page.locator("#lab-collected_on-error")).to_have_text("2030-01-01 is in the future")
    expect(page.locator("#lab-value")).to_have_value("150")
    expect(page.locator("#lab-problems")).to_contain_text("2030-01-01 is in the future")
    shot(page, "01-refused-lab")
    collected.fill("2026-03-01")
    page.get_by_role("button", name="Save laboratory result").click()
    expect(page.locator("#labs tbody tr")).to_contain_text("150 U/L")
    expect(page.locator("#labs tbody tr")).to_contain_text("grade 2 (> 3.0 x ULN)")  # 150 U/L, ULN 40
    expect(page.locator("#labs tbody tr")).to_contain_text("Alanine aminotransferase increased")

    # Vital signs give the Hypertension grade.
    vitals = page.locator("#vitals")
    vitals.get_by_label("Measured on").fill("2026-03-20")
    vitals.get_by_label("Systolic (mmHg)").fill("165")
    vitals.get_by_label("Diastolic (mmHg)").fill("95")
    vitals.get_by_role("button", name="Save vital signs").click()
    expect(page.locator("#vitals tbody tr")).to_contain_text("grade 3")

    # A conflict with the study's state is a notice by the form.
    _first_dose(page, live)
    dosing = page.locator("#dosing")
    dosing.get_by_label("Dose level").select_option("-1")
    dosing.get_by_label("First day dosed").fill("2026-04-01")
    dosing.get_by_role("button", name="Add dosing period").click()
    expect(page.locator("#dosing-problems")).to_contain_text("overlaps dosing period 1")
    expect(page.locator("#dosing-problems")).to_be_focused()
    shot(page, "02-conflict")


def test_imaging_and_disposition(page, study):
    live = study
    sign_in(page, live, "coordinator")
    page.goto(f"{live.url}{PARTICIPANT}")
    imaging = page.locator("#imaging")
    imaging.get_by_label("Imaging date").fill("2026-06-01")
    imaging.get_by_label("Method").select_option("MRI")
    imaging.get_by_label("Result").select_option("recurrence")
    imaging.get_by_role("button", name="Save imaging assessment").click()
    expect(page.locator("#imaging-recurrence_sites-error")).to_contain_text("a recurrence needs its sites")
    page.locator("#imaging").get_by_label("liver").check()
    page.locator("#imaging").get_by_role("button", name="Save imaging assessment").click()
    expect(page.locator("#imaging tbody tr")).to_contain_text("liver")

    disposition = page.locator("#disposition")
    disposition.get_by_label("Phase").select_option("treatment")
    disposition.get_by_label("How it ended").select_option("recurrence")
    disposition.get_by_label("Date").fill(dt.datetime.now(dt.UTC).date().isoformat())  # after enrolment
    disposition.get_by_label("Why it ended").fill("Liver recurrence on MRI")
    disposition.get_by_role("button", name="Save disposition").click()
    expect(page.locator("#disposition tbody tr")).to_contain_text("recurrence")
    expect(page.locator("main dl").first).to_contain_text("in follow-up")
    shot(page, "01-recurrence-and-disposition")


def test_the_adverse_event_preview_works_without_javascript(browser, study):
    live = study
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.screenshot_dir = SCREENSHOTS / "test_the_adverse_event_preview_works_without_javascript"
        sign_in(page, live, "coordinator")
        page.goto(f"{live.url}{PARTICIPANT}")
        form = page.locator("form[data-preview]")
        _hypertension(form)
        form.get_by_role("button", name="Preview").click()
        _expect_interrupt(page.locator("#ae-assessment .recommendation"))
        expect(page.get_by_label(re.compile("^Antihypertensive treatment"))).to_be_visible()
        shot(page, "01-preview")
    finally:
        context.close()


def test_the_participant_page_in_simplified_chinese(page, study):
    live = study
    sign_in(page, live, "investigator")
    with page.expect_navigation():
        page.get_by_label("Language").select_option("zh")
    page.goto(f"{live.url}{PARTICIPANT}")
    expect(page.get_by_role("heading", name="受试者 NET-001")).to_be_visible()
    expect(page.get_by_role("heading", name="不良事件", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="预览")).to_be_visible()
    shot(page, "01-chinese")
