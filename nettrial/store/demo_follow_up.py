"""The demo study's follow-up: recurrences on imaging, one death, a withdrawal, a loss; the dispositions.

Recurrences (likelier in G3) show on one of the first two scans and end the series; the participant
with the earliest dies after it; one participant withdraws consent and one is lost to follow-up. The
investigator records the scans and how treatment and the study ended.
"""

from __future__ import annotations

import datetime as dt

from nettrial.eligibility.context import add_months
from nettrial.store._demo_plan import DAY, Course, Demo
from nettrial.store.models import Disposition, TumourAssessment

# The participant status a disposition implies (as store.assessments sets it).
_IMPLIED = {
    "treatment": "follow_up",
    "withdrawn": "off_study",
    "lost_to_follow_up": "off_study",
    "death": "died",
}


def plan_outcomes(demo: Demo, courses: list[Course]) -> None:
    """Recurrences, the death, a withdrawal, a loss to follow-up; then each course's planned end of dosing."""
    rng, data, today = demo.rng, demo.data, demo.today
    scanned = [c for c in courses if c.scans]
    weights = [3.0 if c.kind == "g3" else 1.0 for c in scanned]
    chosen = demo.pick(scanned, len(data["recurrences"]), weights)
    for course, sites in zip(chosen, data["recurrences"], strict=True):
        day = rng.choice(course.scans[:2])[1]
        course.recurrence, course.scans = (day, sites), [s for s in course.scans if s[1] <= day]
    dead = min(chosen, key=lambda c: c.recurrence[0])
    dead.death = dead.recurrence[0] + rng.randint(*data["death"]["after_recurrence_days"]) * DAY
    dead.death = min(today - DAY, dead.death)
    others = [c for c in courses if c not in chosen]
    gone = rng.choice([c for c in others if 120 <= (today - c.first).days <= 260])
    gone.withdrawn = gone.first + rng.randint(50, 100) * DAY
    lost = rng.choice([c for c in others if (today - c.first).days >= 250 and c is not gone])
    lost.lost = min(today - DAY, add_months(lost.first, 6) + rng.randint(40, 70) * DAY)
    treatment = demo.protocol.treatment
    for course in courses:
        course.scans = [s for s in course.scans if s[1] <= course.follow_end]
        end = course.first + (treatment.cycles * treatment.cycle_days - 1) * DAY
        recurred = course.recurrence[0] if course.recurrence else None
        course.cut = min(d for d in (end, recurred, course.withdrawn) if d)


def imaging(demo: Demo, course: Course) -> list[TumourAssessment]:
    """The baseline scan at screening, then every three months; a recurrence ends the series."""
    rng, methods, scans = demo.rng, demo.data["imaging_methods"], []
    for code, day in [("SCREENING", course.screened - rng.randint(0, 3) * DAY), *course.scans]:
        recurred = course.recurrence is not None and day == course.recurrence[0]
        therapy = day + rng.randint(14, 40) * DAY if recurred else dt.date.max
        scans.append(TumourAssessment(
            participant_id=course.rows["participant"].id, assessed_on=day, visit_code=code,
            method=rng.choices(list(methods), list(methods.values()))[0],
            result="recurrence" if recurred else "no_evidence_of_disease",
            recurrence_sites=course.recurrence[1] if recurred else [],
            new_anticancer_therapy_on=therapy if therapy < min(demo.today, course.follow_end) else None,
        ))  # fmt: skip
    return scans


def dispositions(demo: Demo, course: Course) -> list[Disposition]:
    """How treatment ended (when it has), then how the study ended (death, withdrawal, loss)."""
    pid, ends, data = course.rows["participant"].id, [], demo.data
    if course.stopped:
        status, reason = course.stopped
        ends.append(Disposition(
            participant_id=pid, phase="treatment", status=status, status_date=course.ended, reason=reason
        ))  # fmt: skip
    left = {"death": course.death, "withdrawn": course.withdrawn, "lost_to_follow_up": course.lost}
    for status, day in ((status, day) for status, day in left.items() if day):
        sites = ", ".join(course.recurrence[1]) if status == "death" else None
        ends.append(Disposition(
            participant_id=pid, phase="study", status=status, status_date=day,
            reason=data["left_study"][status],
            cause_of_death=sites and data["death"]["cause"].format(sites=sites),
        ))  # fmt: skip
    return ends


def implied_status(last: Disposition) -> tuple[str, str]:
    """The participant status the last (strongest) disposition implies, and the audit reason for it."""
    status = _IMPLIED["treatment" if last.phase == "treatment" else last.status]
    return status, f"{last.phase} disposition: {last.status}"
