"""The dashboard: enrolment progress, screening funnel, visits due this week, open queries, SAEs to review."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from fastapi import APIRouter, Request
from sqlalchemy import func, select

from nettrial.exceptions import ConflictError
from nettrial.store.models import AdverseEvent, DataQuery, Participant, Patient, Study
from nettrial.store.schedule import participant_schedule
from nettrial.store.screening import latest_evaluation
from nettrial.web.render import render
from nettrial.web.session import page_actor

router = APIRouter(include_in_schema=False)


@router.get("/")
def dashboard(request: Request):
    """Where the study stands today."""
    actor = page_actor(request)
    protocol = request.app.state.protocol
    today = dt.date.today()
    week_end = today + dt.timedelta(days=7)
    with request.app.state.db.session(write=False) as session:
        target = session.scalar(select(Study.target_enrolment)) or protocol.identity.target_enrolment
        participants = session.scalars(select(Participant).order_by(Participant.study_number)).all()
        funnel = Counter()
        for patient in session.scalars(select(Patient)):
            evaluation = latest_evaluation(session, patient)
            funnel["screened"] += 1
            funnel[evaluation.decision if evaluation else "NOT_EVALUATED"] += 1
        visits = []
        for participant in participants:
            try:
                schedule = participant_schedule(
                    session, participant=participant, protocol=protocol, today=today
                )
            except ConflictError:
                continue  # no first dose yet: nothing is scheduled
            for status in schedule.statuses:
                due_soon = status.status == "due" or (
                    status.status == "upcoming" and status.visit.earliest <= week_end
                )
                if status.status == "overdue" or due_soon:
                    visits.append((participant, status))
        open_queries = session.scalar(select(func.count(DataQuery.id)).where(DataQuery.status != "closed"))
        saes = session.scalars(
            select(AdverseEvent).where(AdverseEvent.serious.is_(True), AdverseEvent.reviewed_by.is_(None))
        ).all()
        study_ids = {p.id: p.study_id for p in participants}
        return render(
            request,
            "dashboard.html",
            enrolled=len(participants),
            target=target,
            funnel=funnel,
            visits=sorted(visits, key=lambda item: item[1].visit.latest),
            open_queries=open_queries,
            saes=[(study_ids.get(e.participant_id, "?"), e) for e in saes],
            actor_name=actor.full_name,
        )
