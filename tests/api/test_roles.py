"""Every route x every role: the one role matrix (roles.yaml) is what the service enforces.

The walk is generated from the application's own routes, so a new route is covered the moment it
exists; a route without a permission dependency fails ``test_every_route_declares_its_action``.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from nettrial.api.deps import role_matrix
from nettrial.api.routes import ROUTERS
from nettrial.store.users import ROLES
from tests import factories

# Routes any signed-in user may call, and routes that need no sign-in at all.
SIGNED_IN_ONLY = {("GET", "/api/v1/auth/me"), ("POST", "/api/v1/auth/logout")}
PUBLIC = {("POST", "/api/v1/auth/token"), ("GET", "/healthz")}


def _actions(route: APIRoute) -> tuple[str, ...] | None:
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        actions = getattr(dependency.call, "actions", None)
        if actions:
            return actions
        pending.extend(dependency.dependencies)
    return None


def _routes() -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every API route; logout last, as it ends the session it is called with."""
    found = [
        (method, "/api/v1" + route.path, route)
        for router in ROUTERS
        for route in router.routes
        for method in sorted(route.methods)
    ]
    return sorted(found, key=lambda item: item[1] == "/api/v1/auth/logout")


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_declares_its_action():
    unguarded = [
        (method, path)
        for method, path, route in _routes()
        if _actions(route) is None and (method, path) not in SIGNED_IN_ONLY | PUBLIC
    ]
    assert unguarded == []


def test_the_matrix_gives_each_role_what_the_protocol_team_agreed():
    matrix = role_matrix()
    assert set(matrix) == set(ROLES)
    assert "study.read" not in matrix["statistician"]  # pseudonymised only
    assert not any(a.endswith(".write") or a.startswith("enrol") for a in matrix["monitor"])
    assert "enrol.override" in matrix["investigator"] and "enrol.override" not in matrix["coordinator"]
    assert matrix["admin"] == {"users.manage", "audit.read"}


@pytest.fixture
def signed_in(db):
    factories.seed(db)
    api = factories.client(db)
    return api, {role: factories.login(api, role) for role in ROLES}


def test_every_route_with_every_role(signed_in):
    api, headers = signed_in
    checked = 0
    for method, path, route in _routes():
        if (method, path) in PUBLIC:
            continue
        actions = _actions(route) or ()
        for role in ROLES:
            allowed = (method, path) in SIGNED_IN_ONLY or any(a in role_matrix()[role] for a in actions)
            response = api.request(method, _url(path), headers=headers[role], json={})
            if allowed:
                assert response.status_code not in (401, 403), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.status_code)
                assert response.json()["error"]["code"] == "forbidden"
            checked += 1
        anonymous = api.request(method, _url(path), json={})
        assert anonymous.status_code == 401, (method, path)
    assert checked >= 5 * 15
