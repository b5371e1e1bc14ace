"""Writes at the same moment, against the real server: one study number each and no 36th
participant; one screening-record version each.

The requests go over real connections at once (threads, a barrier), so the server runs them in
parallel on its own thread pool and database connections; only the store's write lock stands
between them and a duplicated or skipped number.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from nettrial.store.audit import verify_chain
from nettrial.store.models import Participant, Patient, ScreeningRecordVersion, Study
from tests import factories
from tests.api.server import seeded

pytestmark = pytest.mark.slow

TARGET = 35


def _at_once(server, token: str, requests: list[tuple[str, str, dict]]) -> list[tuple[int, dict]]:
    """Send (method, path, body) requests all together, each on its own connection; (status, body)s."""
    barrier = threading.Barrier(len(requests))
    results: list[tuple[int, dict]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def send(method: str, path: str, body: dict) -> None:
        try:
            with server.client(token) as client:
                client.get("/auth/me").raise_for_status()  # the connection is open before the barrier
                barrier.wait(timeout=60)
                response = client.request(method, path, json=body)
            with lock:
                results.append((response.status_code, response.json() if response.content else {}))
        except BaseException as error:
            with lock:
                failures.append(error)

    threads = [threading.Thread(target=send, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert len(results) == len(requests)
    return results


def _enrol_at_once(server, token: str, patient_ids: list[int]) -> list[tuple[int, dict]]:
    return _at_once(server, token, [("POST", f"/patients/{pid}/enrolment", {}) for pid in patient_ids])


def _participants(db) -> list[tuple[int, str, int]]:
    with db.session(write=False) as session:
        return session.execute(
            select(Participant.study_number, Participant.study_id, Participant.patient_id).order_by(
                Participant.study_number
            )
        ).all()


def _chain_ok(db) -> None:
    with db.session(write=False) as session:
        report = verify_chain(session)
    assert report.ok, report


def test_fifty_at_once_for_the_last_place_enrol_exactly_one(db, tmp_path):
    server, users = seeded(db, tmp_path / "server.log")
    investigator = users["investigator"]
    for n in range(TARGET - 1):
        factories.enrolled(db, investigator, name=f"Enrolled Patient {n:02d}")
    waiting = [
        factories.eligible_patient(db, investigator, name=f"Waiting Patient {n:02d}") for n in range(50)
    ]
    with server:
        results = _enrol_at_once(server, server.login("investigator"), waiting)

    statuses = Counter(status for status, _ in results)
    assert not [r for r in results if r[0] >= 500], server.output()
    assert statuses == {201: 1, 409: 49}, (statuses, server.output())
    ((_, accepted),) = [r for r in results if r[0] == 201]
    assert accepted["study_id"] == "NET-035"
    winner = accepted["patient_id"]
    assert winner in waiting
    refused = [body["error"] for status, body in results if status == 409]
    assert all(error["field"] == "enrolment" for error in refused), refused

    participants = _participants(db)
    assert len(participants) == TARGET
    assert [number for number, _, _ in participants] == list(range(1, TARGET + 1))
    assert [study_id for _, study_id, _ in participants] == [f"NET-{n:03d}" for n in range(1, TARGET + 1)]
    assert participants[-1][2] == winner
    with db.session(write=False) as session:
        enrolled = session.scalar(select(func.count()).where(Patient.status == "enrolled"))
        assert enrolled == TARGET
        assert session.scalar(select(Study.enrolled)) == TARGET
        still_screening = set(session.scalars(select(Patient.id).where(Patient.status == "screening")))
    assert still_screening == set(waiting) - {winner}
    _chain_ok(db)


def test_twenty_at_once_for_the_same_patient_enrol_it_once(db, tmp_path):
    server, users = seeded(db, tmp_path / "server.log")
    patient_id = factories.eligible_patient(db, users["coordinator"], name="Only Patient")
    with server:
        results = _enrol_at_once(server, server.login("coordinator"), [patient_id] * 20)

    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 1, 409: 19}, (statuses, server.output())
    ((_, accepted),) = [r for r in results if r[0] == 201]
    assert (accepted["study_id"], accepted["patient_id"]) == ("NET-001", patient_id)
    refused = [body["error"] for status, body in results if status == 409]
    assert all(error["field"] == "patient" for error in refused), refused

    assert _participants(db) == [(1, "NET-001", patient_id)]
    with db.session(write=False) as session:
        assert session.scalar(select(Study.enrolled)) == 1
    _chain_ok(db)


def test_twenty_saves_at_once_of_one_screening_record_each_become_the_next_version(db, tmp_path):
    # Saving is not refused on either database when nobody else writes; writing at the same time
    # must not change that (SQLite queues the writers; PostgreSQL must serialise them too).
    server, users = seeded(db, tmp_path / "server.log")
    patient_id = factories.patient(db, users["coordinator"], name="Busy Record")
    record = factories.eligible_record()
    with server:
        requests = [("PUT", f"/patients/{patient_id}/screening-record", record)] * 20
        results = _at_once(server, server.login("coordinator"), requests)

    assert Counter(status for status, _ in results) == {201: 20}, [b for s, b in results if s != 201][:3]
    assert sorted(body["version"] for _, body in results) == list(range(1, 21))
    with db.session(write=False) as session:
        versions = session.scalars(
            select(ScreeningRecordVersion.version).where(ScreeningRecordVersion.patient_id == patient_id)
        ).all()
    assert sorted(versions) == list(range(1, 21))
    _chain_ok(db)
