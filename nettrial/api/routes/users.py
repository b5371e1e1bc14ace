"""Users and sites (admin): accounts with one role each, and the hospitals they work at."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from nettrial.api.deps import DbDep, UserManager, reading, writing
from nettrial.exceptions import NotFoundError
from nettrial.store.models import Site, User
from nettrial.store.screening import create_site
from nettrial.store.users import ROLES, create_user

router = APIRouter(tags=["users"])
Role = Literal[ROLES]  # type: ignore[valid-type]


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=8, max_length=200)
    role: Role
    full_name: str = Field(min_length=1, max_length=200)
    site_code: str | None = None
    language: Literal["en", "zh"] = "en"


class UserUpdate(BaseModel):
    role: Role | None = None
    active: bool | None = None
    language: Literal["en", "zh"] | None = None
    reason: str = Field(min_length=3, description="why the account is changed (audited)")


class UserPublic(BaseModel):
    id: int
    username: str
    full_name: str
    role: str
    active: bool
    language: str


class SiteCreate(BaseModel):
    code: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=200)


class SitePublic(BaseModel):
    id: int
    code: str
    name: str


def _user(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        active=user.active,
        language=user.language,
    )


@router.get("/users", response_model=list[UserPublic])
def list_users(db: DbDep, actor: UserManager) -> list[UserPublic]:
    """Every account."""
    with reading(db) as session:
        return [_user(u) for u in session.scalars(select(User).order_by(User.id))]


@router.post("/users", response_model=UserPublic, status_code=201)
def add_user(body: UserCreate, db: DbDep, actor: UserManager) -> UserPublic:
    """Create an account (the password is stored as an argon2 hash)."""
    with writing(db, actor) as session:
        return _user(create_user(session, **body.model_dump()))


@router.patch("/users/{user_id}", response_model=UserPublic)
def change_user(user_id: int, body: UserUpdate, db: DbDep, actor: UserManager) -> UserPublic:
    """Change an account's role, language or whether it is active."""
    with writing(db, actor, body.reason) as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFoundError("user", user_id)
        for key, value in body.model_dump(exclude={"reason"}, exclude_none=True).items():
            setattr(user, key, value)
        session.flush()
        return _user(user)


@router.get("/sites", response_model=list[SitePublic])
def list_sites(db: DbDep, actor: UserManager) -> list[SitePublic]:
    """Every site."""
    with reading(db) as session:
        return [SitePublic(id=s.id, code=s.code, name=s.name) for s in session.scalars(select(Site))]


@router.post("/sites", response_model=SitePublic, status_code=201)
def add_site(body: SiteCreate, db: DbDep, actor: UserManager) -> SitePublic:
    """Add a site."""
    with writing(db, actor) as session:
        site = create_site(session, code=body.code, name=body.name)
        return SitePublic(id=site.id, code=site.code, name=site.name)
