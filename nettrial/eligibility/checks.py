"""The leaf checks of a criterion rule: each turns record data into an :class:`Outcome`.

Every check is generic (a lab against a limit, a history event in a window, an age band); the
protocol file says which field, which limit and which window. Missing data gives UNKNOWN with the
missing field named; data outside its validity window (stale labs, old tests) is UNKNOWN too.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from typing import Any

from nettrial.eligibility.context import Context, add_months, whole_years
from nettrial.eligibility.record import HistoryEvent
from nettrial.eligibility.tumour import tumour_outcome
from nettrial.eligibility.verdicts import Evidence, Outcome, Truth, any_of, from_bool
from nettrial.protocol import model
from nettrial.units import same_unit_limit, to_canonical

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


def unknown(field: str, reason: str, **evidence: Any) -> Outcome:
    return Outcome(Truth.UNKNOWN, (Evidence(field, reason=reason, **evidence),), (field,))


def equals(check: model.Equals, ctx: Context) -> Outcome:
    value = ctx.get(check.field)
    if value is None:
        return unknown(check.field, "not recorded", threshold=f"= {check.value}")
    truth = from_bool(value == check.value)
    return Outcome(truth, (Evidence(check.field, value, threshold=f"= {check.value}", reason=truth.value),))


def present(check: model.Present, ctx: Context) -> Outcome:
    value = ctx.get(check.field)
    if value is None:
        return unknown(check.field, "not recorded")
    return Outcome(Truth.MET, (Evidence(check.field, value, reason="recorded"),))


def date_not_after(check: model.DateNotAfter, ctx: Context) -> Outcome:
    day, reference = ctx.date_of(check.field), ctx.date_of(check.reference)
    if day is None or reference is None:
        return unknown(check.field if day is None else check.reference, "date not recorded")
    truth = from_bool(day <= reference)
    reason = f"{'on or before' if truth is Truth.MET else 'after'} {check.reference} {reference}"
    return Outcome(
        truth,
        (Evidence(check.field, day.isoformat(), threshold=f"<= {check.reference}", reason=reason),),
    )


def age(check: model.Age, ctx: Context) -> Outcome:
    birth, on = ctx.date_of(check.birth), ctx.date_of(check.at)
    if birth is None or on is None:
        return unknown(check.birth if birth is None else check.at, "needed to compute the age")
    years = whole_years(birth, on)
    truth = from_bool(check.min_years <= years <= check.max_years)
    band = f"{check.min_years}-{check.max_years} years"
    return Outcome(truth, (Evidence("age", years, "years", on, band, f"born {birth}, age on {check.at}"),))


def attestation(_check: model.Attestation, ctx: Context, criterion: str) -> Outcome:
    answer = ctx.record.attestations.get(criterion)
    field = f"attestations.{criterion}"
    if answer is None:
        return unknown(field, "investigator's answer not recorded")
    truth = from_bool(answer.answer == "yes")
    return Outcome(
        truth, (Evidence(field, answer.answer, date=answer.at, reason=f"attested by {answer.by}"),)
    )


# --- laboratory values -----------------------------------------------------------------------


def _latest_lab(test: str, max_age_days: int, ctx: Context) -> tuple[Any, Outcome | None]:
    """The latest result of ``test`` dated within the window, or an UNKNOWN outcome saying why not."""
    field = f"labs.{test}"
    results = [lab for lab in ctx.record.labs if lab.test == test]
    if not results:
        return None, unknown(field, "not recorded")
    oldest_allowed = ctx.index_date - dt.timedelta(days=max_age_days)
    usable = [lab for lab in results if oldest_allowed <= lab.date <= ctx.index_date]
    if usable:
        return max(usable, key=lambda lab: lab.date), None
    latest = max(results, key=lambda lab: lab.date)
    if latest.date > ctx.index_date:
        why = f"dated {latest.date}, after the index date {ctx.index_date}"
    else:
        why = f"stale: {latest.date} is more than {max_age_days} days before the index date {ctx.index_date}"
    outcome = Outcome(
        Truth.UNKNOWN,
        (
            Evidence(
                field,
                latest.value,
                latest.unit,
                latest.date,
                f"dated {oldest_allowed} or later",
                why,
            ),
        ),
        (f"{field} (stale)",),
        ctx.provisional,
    )
    return None, outcome


def lab(check: model.Lab, ctx: Context) -> Outcome:
    result, problem = _latest_lab(check.test, check.max_age_days, ctx)
    if problem:
        return problem
    field = f"labs.{check.test}"
    quantity = to_canonical(check.test, result.value, result.unit, field)
    if check.value is not None:
        limit = to_canonical(check.test, check.value, check.unit, f"protocol {field}").value
        truth = from_bool(OPS[check.op](quantity.value, limit))
        threshold = f"{check.op} {check.value:g} {check.unit}"
        evidence = Evidence(field, result.value, result.unit, result.date, threshold, truth.value)
        return Outcome(truth, (evidence,), (), ctx.provisional)
    if result.uln is None:
        return unknown(
            f"{field}.uln",
            "the upper limit of normal is needed",
            value=result.value,
            unit=result.unit,
        )
    uln = same_unit_limit(check.test, result.uln, result.unit, f"{field}.uln")
    ratio = round(quantity.value / uln, 9)

    def verdict(multiple: float) -> Truth:
        return from_bool(OPS[check.op](ratio, multiple))

    multiples = {False: check.times_uln}
    if check.when_true:
        multiples[True] = check.when_true.times_uln
        condition = ctx.get(check.when_true.field)
        if condition is not None:
            multiples = {bool(condition): multiples[bool(condition)]}
    truths = {verdict(m) for m in multiples.values()}
    shown = " / ".join(f"{check.op} {m:g} x ULN" for m in dict.fromkeys(multiples.values()))
    base = Evidence(
        field, result.value, result.unit, result.date, shown, f"{ratio:.2f} x ULN ({result.uln:g})"
    )
    if len(truths) == 1:
        truth = truths.pop()
        return Outcome(truth, (base,), (), ctx.provisional)
    missing = check.when_true.field
    reason = f"verdict depends on {missing}, which is not recorded"
    return Outcome(Truth.UNKNOWN, (base, Evidence(missing, reason=reason)), (missing,), ctx.provisional)


def creatinine_clearance(check: model.CreatinineClearance, ctx: Context) -> Outcome:
    """Cockcroft-Gault (ctcae.md): (140 - age) x kg / (72 x SCr mg/dL), x 0.85 for women."""
    result, problem = _latest_lab("creatinine", check.max_age_days, ctx)
    if problem:
        return problem
    identity = ctx.record.identity
    needs = {
        "identity.date_of_birth": identity.date_of_birth,
        "identity.sex": identity.sex,
        "identity.weight": identity.weight,
    }
    absent = [name for name, value in needs.items() if value is None]
    if absent:
        return Outcome(
            Truth.UNKNOWN,
            tuple(Evidence(a, reason="needed for Cockcroft-Gault") for a in absent),
            tuple(absent),
        )
    scr = to_canonical("creatinine", result.value, result.unit, "labs.creatinine").value
    years = whole_years(identity.date_of_birth, ctx.index_date)
    clearance = (140 - years) * identity.weight.kg / (72 * scr) * (0.85 if identity.sex == "female" else 1.0)
    clearance = round(clearance, 6)
    truth = from_bool(OPS[check.op](clearance, check.value))
    reason = (
        f"Cockcroft-Gault: age {years}, {identity.weight.kg:g} kg, {identity.sex}, "
        f"creatinine {result.value:g} {result.unit}"
    )
    evidence = Evidence(
        "creatinine_clearance",
        round(clearance, 1),
        "mL/min",
        result.date,
        f"{check.op} {check.value:g} mL/min",
        reason,
    )
    return Outcome(truth, (evidence,), (), ctx.provisional)


# --- lists, tests and history ------------------------------------------------------------------


def none_within(check: model.NoneWithin, ctx: Context) -> Outcome:
    section = ctx.get(check.list)
    start = ctx.index_date - dt.timedelta(days=check.days)
    given = [item for item in section.items if item.kind in check.kinds]
    recent = [item for item in given if start < item.date <= ctx.index_date]
    earliest = max((i.date for i in given), default=None)
    earliest = earliest + dt.timedelta(days=check.days) if earliest else None
    if recent:
        evidence = tuple(
            Evidence(
                f"{check.list}.{i.kind}",
                i.detail or i.kind,
                date=i.date,
                threshold=f"none within {check.days} days",
                reason="given within the window",
            )
            for i in recent
        )
        return Outcome(Truth.NOT_MET, evidence, (), ctx.provisional, earliest)
    if not section.reviewed:
        return unknown(check.list, "not reviewed: record the items given, or that none were")
    evidence = Evidence(
        check.list,
        "none",
        threshold=f"none within {check.days} days",
        reason="reviewed, none given",
    )
    return Outcome(Truth.MET, (evidence,), (), ctx.provisional, earliest)


def pregnancy_test(check: model.PregnancyTest, ctx: Context) -> Outcome:
    test = ctx.record.reproductive.pregnancy_test
    field = "reproductive.pregnancy_test"
    window = f"{check.type} {check.result}, within {check.within_hours} h before the first dose"
    if test is None or test.type != check.type:
        return unknown(field, f"no {check.type} test recorded", threshold=window)
    taken = test.taken_at.replace(tzinfo=None)
    # Before the earliest possible dose time, and within the window of the latest one.
    before = (ctx.index_start - taken).total_seconds() / 3600
    age_hours = (ctx.index_end - taken).total_seconds() / 3600
    evidence = Evidence(
        field,
        test.result,
        date=test.taken_at,
        threshold=window,
        reason=f"taken {age_hours:.1f} h before the index",
    )
    if before < 0 or age_hours > check.within_hours:
        why = (
            "taken after the first dose could be given"
            if before < 0
            else f"taken {age_hours:.1f} h before: outside the window"
        )
        stale = Evidence(field, test.result, date=test.taken_at, threshold=window, reason=why)
        return Outcome(
            Truth.UNKNOWN, (stale,), (f"{field} (outside {check.within_hours} h)",), ctx.provisional
        )
    return Outcome(from_bool(test.result == check.result), (evidence,), (), ctx.provisional)


def _matches(event: Any, where: dict[str, Any]) -> Truth:
    truths = []
    for name, wanted in where.items():
        value = getattr(event, name)
        if value is None:
            truths.append(Truth.UNKNOWN)
        else:
            truths.append(from_bool(value in wanted if isinstance(wanted, list) else value == wanted))
    if Truth.NOT_MET in truths:
        return Truth.NOT_MET
    return Truth.UNKNOWN if Truth.UNKNOWN in truths else Truth.MET


def _window_start(check: model.History, ctx: Context) -> dt.date | None:
    if check.within is None:
        return None
    if check.within.days is not None:
        return ctx.index_date - dt.timedelta(days=check.within.days)
    return add_months(ctx.index_date, -check.within.months)


def _window_end(day: dt.date, check: model.History) -> dt.date:
    if check.within.days is not None:
        return day + dt.timedelta(days=check.within.days)
    return add_months(day, check.within.months)


def history(check: model.History, ctx: Context) -> Outcome:
    """An event of these kinds (with qualifiers, in the window) is present: MET.

    The window excludes its far end: an event exactly ``within`` before the index is outside it
    (surgery 28 days before the first dose is allowed: first dose >= surgery + 28 days).
    """
    record = ctx.record
    events = [e for e in record.history.events if e.kind in check.kinds]
    if check.include_index_surgery:
        if record.surgery.date is None:
            return unknown("surgery.date", "the index resection's date is needed")
        events.append(HistoryEvent(kind="major_surgery", date=record.surgery.date, note="index resection"))
    start = _window_start(check, ctx)
    truths, evidence, missing, binding = [], [], [], []
    for event in events:
        truth = _matches(event, check.where)
        if check.except_where and truth is not Truth.NOT_MET:
            truth = min(truth, _matches(event, check.except_where).negate(), key=_rank)
        if start is not None and truth is not Truth.NOT_MET:
            if event.date is None:
                truth = min(truth, Truth.UNKNOWN, key=_rank)
                missing.append(f"history.{event.kind}.date")
            else:
                # The window's end binds the first dose whether or not today's plan is inside it.
                binding.append(_window_end(event.date, check))
                if event.date <= start:
                    truth = Truth.NOT_MET
        if truth is Truth.UNKNOWN and not missing:
            missing.append(f"history.{event.kind} ({', '.join(check.where) or 'details'})")
        truths.append(truth)
        label = event.note or event.kind
        evidence.append(
            Evidence(
                f"history.{event.kind}",
                label,
                date=event.date,
                threshold=_describe(check),
                reason=truth.value,
            )
        )
    result = any_of(truths)
    if result is Truth.NOT_MET and not record.history.reviewed:
        result = Truth.UNKNOWN
        missing.append("history")
        evidence.append(Evidence("history", reason="not reviewed: record that it was, or the events"))
    earliest = max(binding) if binding else None
    if not evidence:
        evidence.append(
            Evidence("history", "none", threshold=_describe(check), reason="reviewed, no such event")
        )
    return Outcome(result, tuple(evidence), tuple(missing), ctx.provisional and start is not None, earliest)


def _rank(truth: Truth) -> int:
    return {Truth.NOT_MET: 0, Truth.UNKNOWN: 1, Truth.MET: 2}[truth]


def _describe(check: model.History) -> str:
    text = " or ".join(check.kinds)
    if check.where:
        text += " with " + ", ".join(f"{k}={v}" for k, v in check.where.items())
    if check.within:
        text += (
            f" within {check.within.days} days"
            if check.within.days is not None
            else f" within {check.within.months} months"
        )
    return text


def blood_pressure(check: model.BloodPressure, ctx: Context) -> Outcome:
    readings = [r for r in ctx.record.blood_pressure if r.date <= ctx.index_date]
    if not readings:
        return unknown("blood_pressure", "no reading recorded")
    systolic = round(sum(r.systolic for r in readings) / len(readings), 1)
    diastolic = round(sum(r.diastolic for r in readings) / len(readings), 1)
    threshold = f">= {check.systolic_at_least}/{check.diastolic_at_least} mmHg"
    evidence = [
        Evidence(
            "blood_pressure",
            f"{systolic:g}/{diastolic:g}",
            "mmHg",
            max(r.date for r in readings),
            threshold,
            f"mean of {len(readings)} reading(s)",
        )
    ]
    high = systolic >= check.systolic_at_least or diastolic >= check.diastolic_at_least
    if not high:
        return Outcome(Truth.NOT_MET, tuple(evidence))
    treated = [r.on_treatment for r in readings]
    if any(treated):
        return Outcome(Truth.MET, tuple(evidence))
    if check.untreated_counts:
        evidence.append(
            Evidence(
                "blood_pressure.on_treatment",
                reason="untreated high reading also excludes (setting): treat and re-screen",
            )
        )
        return Outcome(Truth.MET, tuple(evidence))
    if None in treated:
        return Outcome(Truth.UNKNOWN, tuple(evidence), ("blood_pressure.on_treatment",))
    return Outcome(Truth.NOT_MET, tuple(evidence))


CHECKS: dict[type, Callable[..., Outcome]] = {
    model.Equals: equals,
    model.Present: present,
    model.DateNotAfter: date_not_after,
    model.Age: age,
    model.Lab: lab,
    model.CreatinineClearance: creatinine_clearance,
    model.NoneWithin: none_within,
    model.PregnancyTest: pregnancy_test,
    model.History: history,
    model.BloodPressure: blood_pressure,
    model.Tumour: tumour_outcome,
}
