"""The synthetic demo study: one site, one account per role, 60 screened patients, 35 participants.

Everything is invented and laid out relative to ``today``, the data cut-off: first doses every ~8
days over the ten months before it, each screening 1-2 weeks before its first dose, then every
course up to that day. One ``random.Random(seed)`` makes every choice, so a seed and a day give the
same study. The tables are ``demo_data.yaml``; the clinical engines decide the rest: each screening
record is evaluated and the evaluation stored, enrolment goes through ``screening.enrol``, results
and events are graded by ``safety.ctcae``, and the dosing log follows ``safety.dosing.recommend``.

The builder runs in phases, each in its own module: screening and enrolment (``demo_screening``);
visits and results (``demo_visits``); recurrences, the death, withdrawal and loss, and dispositions
(``demo_follow_up``); adverse events and dosing (``demo_treatment``). The coordinator enters visits,
results and dosing, the investigator eligibility, enrolment, events, imaging and dispositions, all in
one transaction, so the audit trail holds every field; the screening and enrolment stamps, written at
run time, are then moved onto the timeline with that reason.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nettrial.exceptions import ConflictError
from nettrial.protocol import load_protocol
from nettrial.store import audit
from nettrial.store._demo_plan import Course, Demo, demo_data
from nettrial.store.db import Database, lock_writes
from nettrial.store.demo_follow_up import dispositions, imaging, implied_status, plan_outcomes
from nettrial.store.demo_screening import plan_screening, screen, stamp_timeline
from nettrial.store.demo_treatment import adverse_event_row, dosing_rows, plan_dosing, plan_events
from nettrial.store.demo_visits import plan_schedule, record_visits
from nettrial.store.models import Patient, User
from nettrial.store.screening import create_site
from nettrial.store.users import ROLES, create_user


@dataclass(frozen=True)
class DemoSummary:
    """What ``create_demo_study`` made; ``explain`` lists it with the demo accounts."""

    seed: int
    today: dt.date
    site: str
    users: tuple[tuple[str, str], ...]  # (username, password); the username is the role
    patients: int
    participants: int
    screen_failures: int
    incomplete: int
    treatment: tuple[tuple[str, int], ...]  # (ongoing | completed | adverse_event | ..., participants)
    adverse_events: int
    serious_adverse_events: int
    recurrences: int
    deaths: int

    def explain(self) -> str:
        ended = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in self.treatment)
        lines = [
            f"demo study NCT07279532 (synthetic; seed {self.seed}, data cut-off {self.today})",
            f"  site {self.site}",
            f"  {self.patients} patients screened: {self.participants} enrolled (NET-001..NET-"
            f"{self.participants:03d}), {self.screen_failures} screen failures, {self.incomplete} incomplete",
            f"  treatment: {ended}",
            f"  {self.adverse_events} adverse events ({self.serious_adverse_events} serious), "
            f"{self.recurrences} recurrences, {self.deaths} death(s)",
            "demo users (change these passwords before any real use):",
        ]
        return "\n".join(lines + [f"  {name:<13} password {password}" for name, password in self.users])


def is_empty(db: Database) -> bool:
    """True when the database holds no patient and no user (a demo study may be created)."""
    with db.session(write=False) as session:
        return not _count(session, Patient) and not _count(session, User)


def create_demo_study(db: Database, *, seed: int = 20261123, today: dt.date | None = None) -> DemoSummary:
    """Create the demo study in one transaction; ``ConflictError`` unless the database is empty."""
    today = today or dt.date.today()
    with db.session() as session:
        lock_writes(session)
        if _count(session, Patient) or _count(session, User):
            raise ConflictError("database", "the demo study needs an empty database; this one holds a study")
        demo = Demo(session, today, random.Random(seed), demo_data(), load_protocol("nct07279532"))
        courses = _build(demo)
    enrolled = [c for c in courses if "participant" in c.rows]
    events = [e.row for c in enrolled for e in c.events]
    site = demo_data()["site"]
    return DemoSummary(
        seed=seed,
        today=today,
        site=f"{site['code']} ({site['name']})",
        users=tuple((role, f"{role}-demo") for role in ROLES),
        patients=len(courses),
        participants=len(enrolled),
        screen_failures=sum(c.rows["patient"].status == "screen_failed" for c in courses),
        incomplete=sum(c.rows["evaluation"].decision == "INCOMPLETE" for c in courses),
        treatment=tuple(Counter(c.stopped[0] if c.stopped else "ongoing" for c in enrolled).most_common()),
        adverse_events=len(events),
        serious_adverse_events=sum(e.serious for e in events),
        recurrences=sum(c.recurrence is not None for c in enrolled),
        deaths=sum(c.death is not None for c in enrolled),
    )


def _count(session: Session, table: type) -> int:
    return session.scalar(select(func.count()).select_from(table)) or 0


def _build(demo: Demo) -> list[Course]:
    """The site and accounts, then each phase in turn; every course planned before its rows are written."""
    session, data, site = demo.session, demo.data, demo.data["site"]
    audit.acting_as(session, None, "demo")
    create_site(session, code=site["code"], name=site["name"])
    for role in ROLES:
        name, password = data["users"][role], f"{role}-demo"
        demo.users[role] = create_user(
            session, username=role, password=password, role=role, full_name=name, site_code=site["code"]
        )
    courses = plan_screening(demo)
    screen(demo, courses)
    enrolled = [c for c in courses if "participant" in c.rows]
    plan_schedule(demo, enrolled)
    plan_outcomes(demo, enrolled)
    for spec in data["adverse_events"]:
        plan_events(demo, spec, enrolled)
    for course in enrolled:
        plan_dosing(demo, course)
    _write(demo, enrolled)
    stamp_timeline(demo, courses)
    return courses


def _write(demo: Demo, courses: list[Course]) -> None:
    """Every course's rows: the investigator's (events, imaging, dispositions), then the coordinator's."""
    session, investigator = demo.session, demo.users["investigator"]
    audit.acting_as(session, investigator.id, investigator.username)
    implied: dict[str, list] = {}
    for course in courses:
        for event in course.events:
            event.row = adverse_event_row(demo, course, event)
        session.add_all(e.row for e in course.events)
        session.add_all(imaging(demo, course))
        session.add_all(ends := dispositions(demo, course))
        if ends:  # the participant's status follows the last (strongest) disposition
            status, reason = implied_status(ends[-1])
            implied.setdefault(reason, []).append((course.rows["participant"], status))
    session.flush()
    for reason, changes in implied.items():
        with audit.because(session, reason):
            for participant, status in changes:
                participant.status = status
    coordinator = demo.users["coordinator"]
    audit.acting_as(session, coordinator.id, coordinator.username)
    for baseline in (True, False):  # C1D1 first: its results are the baseline every later one names
        for course in courses:
            record_visits(demo, course, baseline)
            session.add_all(dosing_rows(demo, course) if baseline else [])
        session.flush()
    with audit.because(session, "the participant withdrew consent"):
        for course in courses:
            if course.withdrawn:
                course.rows["consent"].withdrawn_on = course.withdrawn
