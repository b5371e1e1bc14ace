"""Data queries: about a record that exists, open -> answered -> closed, each step audited with its reason."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from nettrial.exceptions import ConflictError, InputError, NotFoundError
from nettrial.store import audit
from nettrial.store.models import AuditEntry, DataQuery
from nettrial.store.queries import answer_query, close_query, list_queries, open_query
from tests import factories


def _setup(db) -> tuple[dict[str, int], int]:
    users = factories.seed(db)
    return users, factories.enrolled(db, users["investigator"])


def _as(session, users, role):
    return audit.acting_as(session, users[role], role)


def test_a_query_is_about_a_record_that_exists_and_one_of_its_fields(db):
    users, participant = _setup(db)
    with db.session() as session:
        _as(session, users, "monitor")
        with pytest.raises(NotFoundError):
            open_query(session, entity="adverse_event", entity_id=99, field=None, text="?", user_id=1)
        with pytest.raises(InputError) as error:
            open_query(session, entity="user_account", entity_id=1, field=None, text="?", user_id=1)
        assert error.value.field == "entity" and "lab_result" in error.value.allowed
        with pytest.raises(InputError) as error:
            open_query(
                session, entity="participant", entity_id=participant, field="weight", text="?", user_id=1
            )
        assert error.value.field == "field" and "first_dose_date" in error.value.allowed
        query = open_query(
            session,
            entity="participant",
            entity_id=participant,
            field="first_dose_date",
            text="The pharmacy log says the first dose was a day later.",
            user_id=users["monitor"],
        )
        assert query.status == "open"


def test_open_answered_closed_with_each_step_audited(db):
    users, participant = _setup(db)
    with db.session() as session:
        _as(session, users, "monitor")
        query = open_query(
            session,
            entity="participant",
            entity_id=participant,
            field=None,
            text="Check",
            user_id=users["monitor"],
        )
        query_id = query.id
    with db.session() as session:
        _as(session, users, "coordinator")
        query = session.get(DataQuery, query_id)
        answer_query(session, query=query, answer="Checked against source.", user_id=users["coordinator"])
        with pytest.raises(ConflictError):
            answer_query(session, query=query, answer="Again", user_id=users["coordinator"])
    with db.session() as session:
        _as(session, users, "monitor")
        query = session.get(DataQuery, query_id)
        close_query(session, query=query, user_id=users["monitor"])
        with pytest.raises(ConflictError):
            close_query(session, query=query, user_id=users["monitor"], reason="twice")
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "data_query", AuditEntry.field == "status")
            .order_by(AuditEntry.id)
        ).all()  # fmt: skip
    assert [(e.new_value, e.username, e.reason) for e in entries] == [
        ('"open"', "monitor", None),
        ('"answered"', "coordinator", "query answered"),
        ('"closed"', "monitor", "query closed"),
    ]


def test_an_unanswered_query_is_closed_only_with_a_reason(db):
    users, participant = _setup(db)
    with db.session() as session:
        _as(session, users, "monitor")
        query = open_query(
            session,
            entity="participant",
            entity_id=participant,
            field=None,
            text="?",
            user_id=users["monitor"],
        )
        with pytest.raises(ConflictError) as error:
            close_query(session, query=query, user_id=users["monitor"], reason="  ")
        assert error.value.field == "status"
        close_query(session, query=query, user_id=users["monitor"], reason="raised in error")
        assert [q.id for q in list_queries(session, status="closed")] == [query.id]
        assert list_queries(session, status="open") == []
        with pytest.raises(InputError):
            list_queries(session, status="pending")
