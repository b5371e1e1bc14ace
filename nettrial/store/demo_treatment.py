"""The demo study's treatment and safety: adverse events in exact counts, and the dosing log they lead to.

Events come in exact counts per term and worst grade (``demo_data.yaml``), each starting at the visit
whose result shows it (a clinical event on any day). Dosing runs from the first dose to the end of
six cycles, the recurrence or the withdrawal, interrupted, reduced or stopped as
``safety.dosing.recommend`` advises for the events; an event a discontinuation would hide is moved
before it, so the counts hold. The investigator records the events, the coordinator the dosing.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from nettrial.safety.ctcae import grade as ctcae_grade
from nettrial.safety.dosing import DoseRecommendation, Interruption, recommend
from nettrial.store._demo_plan import DAY, Course, Demo, Event, limit, plain_json
from nettrial.store.demo_visits import panel
from nettrial.store.models import AdverseEvent, DosingPeriod


def plan_events(demo: Demo, spec: dict, courses: list[Course]) -> None:
    """One term's events: exact counts by worst grade, among the participants it can happen to."""
    rng, data = demo.rng, demo.data
    grades = [grade for grade, n in spec["grades"].items() for _ in range(n)]
    rng.shuffle(grades)
    able = [c for c in courses if _onset_days(demo, c, spec)]
    prefer = spec.get("prefer", {})  # likelier (AST with ALT) or kept apart (TSH from hypothyroidism)
    weights = [math.prod(prefer.get(e.spec["term"], 1.0) for e in c.events) for c in able]
    heavy, lab = spec.get("heavy_grade_2", 0), data["labs"].get(spec.get("test"), {})
    for course, grade in zip(demo.pick(able, len(grades), weights), grades, strict=False):
        target = course.first + rng.randint(*spec["onset"]) * DAY
        onset = min(_onset_days(demo, course, spec), key=lambda d: abs((d - target).days))
        event = Event(spec, grade, onset, onset + rng.randint(*spec["lasts"]) * DAY)
        if spec.get("test") == "blood_pressure":
            event.value = "/".join(str(rng.randint(*r)) for r in data["blood_pressure"]["grades"][grade])
        elif lab:  # some grade 2 proteinuria >= 2 g/24 h, where the dose rule applies
            event.value = demo.between(*(lab["heavy"] if grade == 2 and heavy > 0 else lab["grades"][grade]))
            heavy -= grade == 2
        course.events.append(event)


def _onset_days(demo: Demo, course: Course, spec: dict) -> list[dt.date]:
    """Days an event may start on while dosing is planned: a result's visit, or any day after C1D1."""
    last = min(course.cut, demo.today - DAY)
    if "test" not in spec:
        return [course.first + n * DAY for n in range(1, (last - course.first).days + 1)]
    only = demo.data["labs"].get(spec["test"], {}).get("visits")
    visits = [(code, day) for code, _, day, _ in course.visits if day and course.first < day <= last]
    return [day for code, day in visits if not only or code in only]


def plan_dosing(demo: Demo, course: Course) -> None:
    """The dosing log, with any event a discontinuation would hide moved to dosing's last day."""
    hidden = _dose(demo, course)
    for _ in range(3):  # an event a discontinuation would hide moves to its last day; dose again
        for event in hidden:
            if days := [d for d in _onset_days(demo, course, event.spec) if d <= course.ended]:
                event.onset, event.ends = days[-1], days[-1] + (event.ends - event.onset)
        hidden = hidden and _dose(demo, course)
    course.events = [e for e in course.events if e.advice is not None]


def _dose(demo: Demo, course: Course) -> list[Event]:
    """The dosing log the events lead to, as the dose rules recommend; returns the events it hides."""
    log, hidden = _DoseLog(demo, course, start=course.first), []
    course.periods, course.panels, course.stopped = [[0, course.first, None, None, None]], {}, None
    visit_of = {d: v for v, _, d, _ in course.visits if d}
    for event in sorted(course.events, key=lambda e: (e.onset, e.spec["term"])):
        term, stop, event.advice, event.action = event.spec["term"], log.stop, None, "none"
        if stop and event.onset > stop and ("test" in event.spec or event.onset > stop + 30 * DAY):
            hidden.append(event)  # after a discontinuation, and no longer treatment-emergent
            continue
        measures = _measures(demo, course, event, visit_of.get(event.onset, ""))
        advice = recommend(demo.protocol, level=log.level, term=term, grade=event.grade, measures=measures)
        event.advice = advice.to_dict() | {"at_dose_level": log.level, "measures": measures}
        if stop or log.start is None or event.onset < log.start:
            event.action = "not_applicable"  # no drug was being taken
        elif advice.action == "continue":
            log.hold(event)
        elif advice.action == "discontinue":
            log.discontinue(event, advice)
        else:
            log.interrupt(event, measures)
    log.finish()
    return hidden


def _measures(demo: Demo, course: Course, event: Event, visit: str) -> dict[str, float]:
    """What the dose rules need beyond term and grade: x ULN, the liver tests, urine protein."""
    test, labs = event.spec.get("test"), demo.data["labs"]
    if test not in labs:
        return {}
    results, uln = panel(demo, course, event.onset, visit), limit(labs[test], "uln", course.sex)
    measures = {"x_uln": round(event.value / uln, 4)} if uln else {}
    if test in ("alt", "ast", "bilirubin"):
        measures["alt_or_ast_x_uln"] = round(max(results[t] / labs[t]["uln"] for t in ("alt", "ast")), 4)
        measures["bilirubin_x_uln"] = round(results["bilirubin"] / labs["bilirubin"]["uln"], 4)
    return measures | ({"urine_protein_g_24h": event.value} if test == "urine_protein" else {})


@dataclass
class _DoseLog:
    """A course's dosing log as it is planned: the dose level, the open period's start, the stop."""

    demo: Demo
    course: Course
    level: int = 0
    start: dt.date | None = None  # None: interrupted, not resumed before the cut
    stop: dt.date | None = None  # the day the drug was withdrawn

    def close(self, day: dt.date, reason: str, event: Event | None = None) -> None:
        self.course.periods[-1][2:] = [day, reason, event]

    def resume(self, day: dt.date | None) -> None:
        self.course.periods.extend([[self.level, day, None, None, None]] if day else [])
        self.start = day

    def hold(self, event: Event) -> None:
        """The rules say continue; the investigator holds a few grade 2 events for a few days anyway."""
        rng, cut = self.demo.rng, self.course.cut
        if event.grade == 2 and rng.random() < event.spec.get("hold_grade_2", 0):
            self.close(event.onset, "interruption", event)
            back = event.onset + rng.randint(4, 8) * DAY
            event.action = "dose_interrupted"
            self.resume(back if back <= min(cut, self.demo.today) else None)

    def discontinue(self, event: Event, advice: DoseRecommendation) -> None:
        self.close(event.onset, "discontinued", event)
        event.action, self.stop, self.course.stopped = "drug_withdrawn", event.onset, _why(event, advice)

    def interrupt(self, event: Event, measures: dict[str, float]) -> None:
        """Interrupt; resume one level lower if the event recovers in time, as the rules then say."""
        demo, term = self.demo, event.spec["term"]
        late = demo.rng.random() < demo.data["not_recovered_in_time"]
        days = demo.rng.randint(29, 35) if late else demo.rng.randint(5, 21)
        now = {"urine_protein_g_24h": 0.6} if "urine_protein_g_24h" in measures else {}
        after = recommend(demo.protocol, level=self.level, term=term, grade=event.grade, measures=measures,
                          interruption=Interruption(days, 1, now))  # fmt: skip
        if event.onset + days * DAY > min(self.course.cut, demo.today):
            self.close(event.onset, "interruption", event)
            event.action, self.start = "dose_interrupted", None
        elif after.action == "resume":
            self.close(event.onset, "reduction", event)
            event.action, self.level = "dose_reduced", after.dose_level
            self.resume(event.onset + days * DAY)
        else:
            self.discontinue(event, after)

    def finish(self) -> None:
        """The end of dosing; past the planned cut, the treatment disposition that cut gives."""
        course, today, cut = self.course, self.demo.today, self.course.cut
        course.ended = self.stop or cut
        if self.stop is None and cut < today:
            recurred = course.recurrence is not None and cut == course.recurrence[0]
            status = "withdrawn" if cut == course.withdrawn else "recurrence" if recurred else "completed"
            course.stopped = (status, self.demo.data["treatment_ended"][status])
            if self.start is not None:
                self.close(cut, "completed" if status == "completed" else "discontinued")


def _why(event: Event, advice: DoseRecommendation) -> tuple[str, str]:
    """The treatment disposition an adverse event's discontinuation gives."""
    term, reason = event.spec["term"], advice.reason
    reason = reason if reason.startswith(term) else f"{term} grade {event.grade}: {reason}"
    return "adverse_event", f"{reason} (rule {advice.rule})"


def adverse_event_row(demo: Demo, course: Course, event: Event) -> AdverseEvent:
    """The event as the investigator records it, with CTCAE's suggestion and the dose advice."""
    spec, sex, today = event.spec, course.sex, demo.today
    lab = demo.data["labs"].get(spec.get("test"), {})
    lln, uln = limit(lab, "lln", sex), limit(lab, "uln", sex)
    unit = "mmHg" if spec.get("test") == "blood_pressure" else lab.get("unit")
    baseline = panel(demo, course, course.first, "C1D1").get(spec.get("test")) if uln else None
    answers = spec.get("answers", {}).get(event.grade)
    suggestion = ctcae_grade(
        spec["term"], event.value, unit, lln=lln, uln=uln, baseline=baseline, answers=answers
    )
    outcome, resolved = "recovered", event.ends
    if event.ends > min(today, course.follow_end):
        resolved = None
        outcome = "recovering" if (today - event.onset).days > 14 else "not_recovered"
        if course.follow_end < today:
            outcome = "not_recovered" if course.death else "unknown"
    criteria, related = list(spec.get("serious", {}).get(event.grade, [])), spec["related"]
    return AdverseEvent(
        participant_id=course.rows["participant"].id, term=suggestion.term, soc=suggestion.soc,
        ctcae_version=suggestion.version, grade=event.grade, onset_date=event.onset,
        resolved_date=resolved, outcome=outcome, action_taken=event.action,
        serious=bool(criteria), serious_criteria=criteria,
        relatedness=demo.rng.choices(list(related), list(related.values()))[0],
        answers=suggestion.inputs["answers"] or None, suggested_grade=suggestion.grade,
        recommendation=plain_json(event.advice), reviewed_by=demo.users["investigator"].id,
    )  # fmt: skip


def dosing_rows(demo: Demo, course: Course) -> list[DosingPeriod]:
    """The dosing log as the coordinator enters it: a few missed doses in long periods at full dose."""
    rows, today = [], demo.today
    for level, start, stop, reason, event in course.periods:
        missed = demo.rng.choice((0, 1, 2)) if level == 0 and ((stop or today) - start).days >= 14 else 0
        rows.append(DosingPeriod(
            participant_id=course.rows["participant"].id, dose_level=level, start_date=start,
            stop_date=stop, stop_reason=reason, adverse_event_id=event and event.row.id,
            missed_doses=missed,
        ))  # fmt: skip
    return rows
