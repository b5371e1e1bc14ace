"""The dashboard: enrolment progress, screening funnel, visits due this week, open queries, SAEs to review."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from sqlalchemy import func, select

from nettrial.store.models import AdverseEvent, DataQuery, Participant, Study
from nettrial.store.schedule import study_schedules
from nettrial.store.screening import screening_funnel
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
        funnel = screening_funnel(session)
        visits = []
        # No first dose yet: nothing is scheduled, so such participants have no schedule here.
        schedules = study_schedules(session, participants, protocol=protocol, today=today)
        for participant in participants:
            for status in schedules[participant.id].statuses if participant.id in schedules else ():
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
