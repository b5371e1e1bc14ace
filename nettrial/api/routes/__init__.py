"""One router per resource; ``ROUTERS`` is the list ``build_app`` includes, in this order."""

from nettrial.api.routes import (
    adverse_events,
    assessments,
    audit,
    auth,
    dispositions,
    dosing,
    measurements,
    participants,
    queries,
    screening,
    users,
)

ROUTERS = [
    auth.router,
    users.router,
    screening.router,
    screening.log_router,
    participants.router,
    measurements.router,
    measurements.labs_router,
    measurements.vitals_router,
    dosing.router,
    dosing.periods_router,
    adverse_events.participant_router,
    adverse_events.router,
    assessments.participant_router,
    assessments.router,
    dispositions.participant_router,
    dispositions.router,
    queries.router,
    audit.router,
]
