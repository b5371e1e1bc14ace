"""Sign in: ``POST /auth/token`` gives a bearer token (OAuth2 password form or JSON)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import BaseModel

from nettrial.api.deps import ActorDep, DbDep, writing
from nettrial.store.users import revoke_token, sign_in

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: str
    username: str
    role: str


class MePublic(BaseModel):
    username: str
    full_name: str
    role: str
    language: str


@router.post("/token", response_model=TokenPublic)
def token(
    db: DbDep, username: Annotated[str, Form(min_length=1)], password: Annotated[str, Form(min_length=1)]
) -> TokenPublic:
    """Exchange a username and password for a bearer token."""
    user, value, expires = sign_in(db, username=username, password=password)
    return TokenPublic(
        access_token=value, expires_at=expires.isoformat(), username=user.username, role=user.role
    )


@router.get("/me", response_model=MePublic)
async def me(actor: ActorDep) -> MePublic:
    """Who this token belongs to."""
    return MePublic(
        username=actor.username, full_name=actor.full_name, role=actor.role, language=actor.language
    )


@router.post("/logout", status_code=204)
def logout(request: Request, db: DbDep, actor: ActorDep) -> None:
    """Revoke the token used for this request."""
    value = request.headers.get("authorization", "").partition(" ")[2].strip()
    with writing(db, actor) as session:
        revoke_token(session, value)
