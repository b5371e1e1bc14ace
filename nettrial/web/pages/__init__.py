"""One module per page family; ``PAGES`` is the list of routers the service includes."""

from nettrial.web.pages import (
    adverse_event_pages,
    auth,
    corrections,
    dashboard,
    exports,
    history,
    participant_forms,
    participants,
    queries,
    screening,
)

PAGES = [auth.router, dashboard.router, screening.router]
# The participant pages, their forms, corrections, history, queries and exports.
PAGES += [
    participants.router,
    participant_forms.router,
    adverse_event_pages.router,
    corrections.router,
    history.router,
    queries.router,
    exports.router,
]
