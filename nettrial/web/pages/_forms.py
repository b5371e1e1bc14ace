"""Forms on the pages: what was entered, what was refused and where, validated by the API's own schemas.

A page form posts plain strings; ``form_data`` turns them into the request body the API route of the
same action receives (empty fields left out, checkbox groups as lists, ``answers.<name>`` and
``measures.<name>`` as dicts), and ``validated`` checks that body with the route's schema, so a form
accepts exactly what the API accepts. A refusal (the schema's or the store's ``InputError``) becomes
a ``FormState`` that renders the message next to the named field and keeps what was entered.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from nettrial.api.deps import Actor
from nettrial.exceptions import ConflictError, InputError, NotFoundError, PermissionDeniedError
from nettrial.web.i18n import translate

Model = TypeVar("Model", bound=BaseModel)
ID_MAX = 2**31 - 1  # what the id columns hold (PostgreSQL integer)
_STUDY_ID = re.compile(r"[A-Za-z]{1,10}-[0-9]{1,9}")


@dataclass
class FormState:
    """One form of a page: the values shown in its fields, and what was refused."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notice: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # filled as the template renders the fields
    language: str = "en"  # of the messages added to ``errors``

    def value(self, name: str, default: Any = "") -> Any:
        found = self.values.get(name)
        return default if found is None else found

    def chosen(self, name: str) -> list[str]:
        """The values of a checkbox group (or a single checkbox) as strings."""
        found = self.values.get(name)
        if found is None:
            return []
        return [str(v) for v in found] if isinstance(found, list | tuple) else [str(found)]

    def error(self, name: str) -> str | None:
        return self.errors.get(name)

    @property
    def refused(self) -> bool:
        return bool(self.errors or self.notice)


def shown(value: Any) -> Any:
    """A stored value as a form field shows it (dates ISO, lists kept, None empty)."""
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else ""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def entered(form: FormData, lists: Iterable[str] = ()) -> dict[str, Any]:
    """What the form holds, as entered: stripped strings, and lists for checkbox groups."""
    lists = set(lists)
    found: dict[str, Any] = {}
    for key in form:
        if key == "csrf_token":
            continue
        found[key] = [str(v) for v in form.getlist(key)] if key in lists else str(form.get(key, "")).strip()
    for key in lists:
        found.setdefault(key, [])
    return found


def form_data(
    values: Mapping[str, Any], fields: Iterable[str], *, flags: Iterable[str] = (), lists: Iterable[str] = ()
) -> dict[str, Any]:
    """The request body for ``fields``: empty fields left out, ``flags`` as booleans, ``lists`` as lists.

    ``answers`` and ``measures`` gather the ``answers.<name>`` and ``measures.<name>`` fields.
    """
    flags, lists = set(flags), set(lists)
    body: dict[str, Any] = {}
    for name in fields:
        if name in flags:
            body[name] = str(values.get(name, "")).lower() in ("true", "on", "1", "yes")
        elif name in lists:
            body[name] = list(values.get(name) or [])
        elif name in ("answers", "measures"):
            group = {
                key.split(".", 1)[1]: value
                for key, value in values.items()
                if key.startswith(f"{name}.") and value not in ("", None)
            }
            if group:
                body[name] = group
        elif values.get(name) not in ("", None):
            body[name] = values[name]
    return body


def validated(model: type[Model], body: Mapping[str, Any], language: str = "en") -> Model:
    """``body`` checked by the API's schema; the first refusal raised as ``InputError`` on its field."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        location = [str(part) for part in first.get("loc", ())]
        name = ".".join(location[:2]) if location[:1] in (["answers"], ["measures"]) else location[0]
        if first.get("type") == "missing":
            message = translate("form.missing", language)
        else:
            message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise InputError(name if location else "body", message) from None


def note_refusal(state: FormState, error: InputError | ConflictError) -> FormState:
    """``state`` with ``error`` shown: an input error next to its field, a conflict as a notice."""
    if isinstance(error, ConflictError):
        state.notice = error.detail
        return state
    message = error.detail
    if error.allowed:
        allowed = error.allowed if isinstance(error.allowed, str) else ", ".join(error.allowed)
        message += " " + translate("form.allowed", state.language, allowed=allowed)
    state.errors[error.field] = message
    return state


def require_any(actor: Actor, *actions: str) -> None:
    if not any(actor.may(action) for action in actions):
        raise PermissionDeniedError(actor.role, " or ".join(actions))


def study_id(text: str) -> str:
    """A study id from a page address (NET-001); anything else is no participant."""
    if not _STUDY_ID.fullmatch(text):
        raise NotFoundError("participant", text)
    return text


def row_id(text: str, entity: str) -> int:
    """A database id from a page address; anything that is not one is no such record."""
    if not (len(text) <= 10 and text.isascii() and text.isdigit()) or not 1 <= int(text) <= ID_MAX:
        raise NotFoundError(entity, text)
    return int(text)
