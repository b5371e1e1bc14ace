"""A participant's record read as plain rows equals the same record read through the ORM.

The demo study is the data: every participant, with and without dosing, visits and interruptions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import event, select

from nettrial.exceptions import ConflictError, NotFoundError
from nettrial.store import treatment
from nettrial.store.demo import create_demo_study
from nettrial.store.models import DosingPeriod, Participant
from nettrial.store.participant_record import (
    participant_key,
    read_participant,
    read_periods,
    read_visits,
)
from nettrial.store.participants import get_participant
from nettrial.store.schedule import participant_schedule, schedule_of
from nettrial.store.visits import list_visits
from tests import factories
from tests.factories import PROTOCOL

TODAY = dt.date(2026, 11, 23)
_PATIENT = ("id", "screening_number", "site_code", "full_name", "medical_record_number", "date_of_birth")


def _columns(rows, model) -> list[tuple]:
    names = [column.key for column in model.__table__.columns]
    return [tuple(getattr(row, name) for name in names) for row in rows]


def test_every_demo_participant_reads_the_same_as_rows_and_through_the_orm(db):
    create_demo_study(db, today=TODAY)
    with db.session(write=False) as session, db.connection() as connection:
        participants = session.scalars(select(Participant).order_by(Participant.id)).all()
        assert len(participants) == 35
        for orm in participants:
            record = read_participant(connection, orm.study_id)
            for name in ("id", "study_id", "status", "enrolled_at", "first_dose_date", "override_reason"):
                assert getattr(record, name) == getattr(orm, name), (orm.study_id, name)
            for name in (*_PATIENT, "sex", "status"):
                assert getattr(record.patient, name) == getattr(orm.patient, name), (orm.study_id, name)
            assert record.enrolled_at.tzinfo is not None  # the UTC column type applies to Core rows too

            periods, visits = read_periods(connection, orm.id), read_visits(connection, orm.id)
            orm_periods = treatment.list_periods(session, orm)
            latest = record.latest_period
            if not orm_periods:
                assert latest is None, orm.study_id
            else:
                last = orm_periods[-1]
                assert (latest.dose_level, latest.start_date, latest.stop_date, latest.stop_reason) == (
                    last.dose_level,
                    last.start_date,
                    last.stop_date,
                    last.stop_reason,
                ), orm.study_id
                assert treatment.state([latest]) == treatment.state(orm_periods)
            assert _columns(periods, DosingPeriod) == _columns(
                treatment.list_periods(session, orm), DosingPeriod
            )
            orm_visits = list_visits(session, orm)
            assert [(v.visit_code, v.status, v.visit_date, v.note) for v in visits] == [
                (v.visit_code, v.status, v.visit_date, v.note) for v in orm_visits
            ]
            rows = schedule_of(record, periods, visits, protocol=PROTOCOL, today=TODAY)
            models = participant_schedule(session, participant=orm, protocol=PROTOCOL, today=TODAY)
            assert rows.statuses == models.statuses, orm.study_id
            assert (rows.first_dose_date, rows.last_dose_date, rows.interruptions, rows.today) == (
                models.first_dose_date,
                models.last_dose_date,
                models.interruptions,
                models.today,
            )


def test_one_statement_each_and_no_schedule_without_a_first_dose_date(db):
    participant_id = factories.enrolled_before_first_dose(db)["Test Patient"]
    seen: list[str] = []
    listener = lambda *args: args[2].startswith("SELECT") and seen.append(args[2])  # noqa: E731  (not SQLite's BEGIN)
    event.listen(db.reader.kw["bind"], "before_cursor_execute", listener)
    with db.connection() as connection:
        record = read_participant(connection, participant_id)
        assert len(seen) == 1 and " JOIN site " in seen[0].replace("\n", " ")
        assert read_periods(connection, record.id) == [] and read_visits(connection, record.id) == []
        assert len(seen) == 3
        undated = dataclasses.replace(record, first_dose_date=None)  # no planned first dose either
        with pytest.raises(ConflictError) as refused:
            schedule_of(undated, [], [], protocol=PROTOCOL, today=TODAY)
        assert refused.value.field == "first_dose_date" and record.study_id in refused.value.detail


@pytest.mark.parametrize(
    ("reference", "key"),
    [
        (3, ("id", 3)),
        ("3", ("id", 3)),
        ("NET-003", ("study_id", "NET-003")),
        ("²", ("study_id", "²")),  # a digit to str.isdigit, not to int()
        ("-1", ("study_id", "-1")),
        ("0", None),
        (str(2**31 - 1), ("id", 2**31 - 1)),
        (str(2**31), None),  # beyond the integer column: no row, and no driver overflow
    ],
)
def test_a_reference_names_a_participant_by_id_or_study_id(reference, key):
    assert participant_key(reference) == key


def test_by_id_and_by_study_id_read_the_same_and_an_unknown_one_is_named(db):
    participant_id = factories.enrolled_before_first_dose(db)["Test Patient"]
    with db.connection() as connection, db.session(write=False) as session:
        study_id = read_participant(connection, participant_id).study_id
        assert read_participant(connection, str(participant_id)) == read_participant(connection, study_id)
        for unknown in ("NET-999", "0", str(2**31), "²", str(participant_id + 1)):
            with pytest.raises(NotFoundError) as orm_error:
                get_participant(session, unknown)
            with pytest.raises(NotFoundError) as row_error:
                read_participant(connection, unknown)
            assert str(row_error.value) == str(orm_error.value)
            assert "participant" in str(row_error.value) and unknown in str(row_error.value)
