"""One router per resource; ``ROUTERS`` is the list ``build_app`` includes, in this order."""

from nettrial.api.routes import auth, screening, users

ROUTERS = [auth.router, users.router, screening.router, screening.log_router]
