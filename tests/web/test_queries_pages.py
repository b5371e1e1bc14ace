"""Data queries in a real browser: the monitor opens one, the coordinator answers, the monitor closes it.

Each role sees only the forms it may use: the monitor opens and closes, the coordinator opens and
answers, the statistician only reads queries; on the exports page the statistician is offered
pseudonymised exports only.
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from nettrial.store import adverse_events, audit, treatment
from nettrial.store.models import User
from nettrial.store.participants import get_participant
from tests import factories
from tests.web.conftest import shot, sign_in


@pytest.fixture
def study(live):
    """NET-001 dosing from 2026-03-02 with one adverse event (grade 3 Hypertension, event 1)."""
    with live.db.session() as session:
        coordinator = session.scalar(select(User.id).where(User.username == "coordinator"))
    factories.enrolled(live.db, coordinator)
    with live.db.session() as session:
        audit.acting_as(session, coordinator, "coordinator")
        participant = get_participant(session, "NET-001")
        treatment.add_period(
            session,
            participant=participant,
            protocol=factories.PROTOCOL,
            dose_level=0,
            start_date=dt.date(2026, 3, 2),
        )
        adverse_events.create_adverse_event(
            session,
            participant=participant,
            protocol=factories.PROTOCOL,
            term="Hypertension",
            grade=3,
            onset_date=dt.date(2026, 3, 20),
            serious=False,
            relatedness="probable",
            action_taken="dose_interrupted",
            outcome="recovering",
        )
    return live


def _sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")


def test_the_monitor_opens_a_query_the_coordinator_answers_and_the_monitor_closes_it(page, study):
    live = study
    sign_in(page, live, "monitor")
    page.goto(f"{live.url}/participants/NET-001")
    page.get_by_role("link", name="Query adverse event 1").click()
    form = page.locator("form#open")
    expect(form.get_by_label("Kind of record")).to_have_value("adverse_event")
    expect(form.get_by_label("Record number")).to_have_value("1")
    form.get_by_role("button", name="Open query").click()  # no question yet: refused beside the field
    expect(page.locator("#open-text")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#open-text")).to_be_focused()
    page.locator("#open-field").fill("grade")
    page.locator("#open-text").fill("The source notes BP 150/95 on one drug: is this grade 3?")
    page.get_by_role("button", name="Open query").click()
    expect(page.get_by_role("status")).to_have_text("The query was opened.")
    query = page.locator("#query-1")
    expect(query.locator(".query-status")).to_have_text("open")
    expect(query).to_contain_text("adverse event 1, grade")
    expect(query.get_by_role("button", name="Send answer")).to_have_count(0)  # the monitor does not answer
    shot(page, "01-opened-by-the-monitor")
    _sign_out(page)

    sign_in(page, live, "coordinator")
    page.goto(f"{live.url}/queries?status=open")
    query = page.locator("#query-1")
    expect(query.get_by_role("button", name="Close query")).to_have_count(0)  # the site does not close
    query.get_by_label("Answer").fill("Source verified: grade 2; the event is corrected.")
    query.get_by_role("button", name="Send answer").click()
    expect(page.get_by_role("status")).to_have_text("The answer was sent.")
    expect(page.locator("#query-1 .query-status")).to_have_text("answered")
    expect(page.locator("#query-1")).to_contain_text("Answered by coordinator")
    shot(page, "02-answered-by-the-coordinator")
    _sign_out(page)

    sign_in(page, live, "monitor")
    page.goto(f"{live.url}/queries")
    page.get_by_label("Status", exact=True).select_option("answered")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#query-1")).to_be_visible()
    page.locator("#query-1").get_by_role("button", name="Close query").click()
    expect(page.get_by_role("status")).to_have_text("The query was closed.")
    expect(page.locator("#query-1 .query-status")).to_have_text("closed")
    expect(page.locator("#query-1").get_by_role("button")).to_have_count(0)
    shot(page, "03-closed-by-the-monitor")
    page.goto(f"{live.url}/history/data_query/1")
    expect(page.locator("table.history")).to_contain_text("query answered")


def test_an_unanswered_query_is_closed_only_with_a_reason(page, study):
    live = study
    sign_in(page, live, "monitor")
    page.goto(f"{live.url}/queries?entity=adverse_event&entity_id=1")
    page.locator("#open-text").fill("Onset date?")
    page.get_by_role("button", name="Open query").click()
    page.locator("#query-1").get_by_role("button", name="Close query").click()
    notice = page.locator("#close-1-problems")
    expect(notice).to_contain_text("give a reason to close it anyway")
    expect(notice).to_be_focused()
    page.locator("#close-1-reason").fill("Raised in error")
    page.locator("#query-1").get_by_role("button", name="Close query").click()
    expect(page.locator("#query-1 .query-status")).to_have_text("closed")


def test_the_statistician_reads_queries_without_a_form_and_exports_pseudonymised_only(page, study):
    live = study
    sign_in(page, live, "statistician")
    page.goto(f"{live.url}/queries")
    expect(page.get_by_role("heading", name="Queries", exact=True)).to_be_visible()
    expect(page.locator("main form[method=post]")).to_have_count(0)
    page.goto(f"{live.url}/exports")
    expect(page.get_by_role("heading", name="Exports")).to_be_visible()
    expect(page.locator("main")).to_contain_text("CDISC SDTM")
    # No choice of identified data: one fixed, pseudonymised form per format.
    expect(page.locator("main input[type=radio][name=identity]")).to_have_count(0)
    expect(page.locator("main input[type=hidden][name=identity][value=pseudonymised]").first).to_be_attached()
    shot(page, "01-exports-statistician")
