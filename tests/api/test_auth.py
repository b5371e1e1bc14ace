"""Signing in over the API: bearer tokens, 401 and 429 as JSON, logout."""

from __future__ import annotations

from tests import factories


def test_token_me_and_logout(db):
    factories.seed(db)
    api = factories.client(db)
    response = api.post(
        "/api/v1/auth/token", data={"username": "monitor", "password": factories.password("monitor")}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["role"]) == ("bearer", "monitor")
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert api.get("/api/v1/auth/me", headers=headers).json()["role"] == "monitor"
    assert api.post("/api/v1/auth/logout", headers=headers).status_code == 204
    gone = api.get("/api/v1/auth/me", headers=headers)
    assert gone.status_code == 401
    assert gone.headers["www-authenticate"] == "Bearer"


def test_wrong_passwords_are_401_then_429_with_retry_after(db):
    factories.seed(db)
    api = factories.client(db)
    for _ in range(5):
        response = api.post("/api/v1/auth/token", data={"username": "monitor", "password": "not it at all"})
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "unknown user or wrong password"
    response = api.post(
        "/api/v1/auth/token", data={"username": "monitor", "password": factories.password("monitor")}
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "too_many_attempts"


def test_missing_form_fields_are_422_naming_the_field(db):
    factories.seed(db)
    response = factories.client(db).post("/api/v1/auth/token", data={"username": "monitor"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "password"
