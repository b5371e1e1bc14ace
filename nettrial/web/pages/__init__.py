"""One module per page family; ``PAGES`` is the list of routers the service includes."""

from nettrial.web.pages import auth, dashboard

PAGES = [auth.router, dashboard.router]
