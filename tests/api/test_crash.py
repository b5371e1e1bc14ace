"""A server killed (SIGKILL) in the middle of a burst of writes loses nothing it acknowledged and
leaves nothing half written: every row has its audit entries, every audit entry has its row, and the
hash chain still verifies, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import inspect, select

from nettrial.store.audit import verify_chain
from nettrial.store.models import AuditEntry, Base, Patient, ScreeningRecordVersion
from tests import factories
from tests.api.server import seeded

pytestmark = pytest.mark.slow

WRITERS = 8
# The kill comes after a second of writing, and not before some writes were acknowledged (on a busy
# machine a second may not be enough for them).
KILL_AFTER_SECONDS = 1.0
ACKNOWLEDGED_BEFORE_KILL = 2 * WRITERS


@dataclass
class Burst:
    """What the clients were told before the server died."""

    patients: list[dict] = field(default_factory=list)  # 201 bodies of POST /patients
    records: list[tuple[int, int]] = field(default_factory=list)  # (patient id, version) answered 201
    unexpected: list[tuple[str, int, str]] = field(default_factory=list)
    cut_off: list[str] = field(default_factory=list)  # transport errors: requests the kill cut off
    lock: threading.Lock = field(default_factory=threading.Lock)


def _write_until_cut_off(server, token: str, writer: int, burst: Burst, started: threading.Barrier) -> None:
    record = factories.eligible_record()
    with server.client(token, timeout=30.0) as client:
        started.wait(timeout=30)
        n = 0
        try:
            while True:
                n += 1
                name = f"Crash Writer{writer} Number{n}"
                response = client.post(
                    "/patients",
                    json={
                        "site_code": factories.SITE,
                        "full_name": name,
                        "medical_record_number": f"MRN-{writer}-{n}",
                        "date_of_birth": "1960-01-31",
                        "sex": "male" if n % 2 else "female",
                    },
                )
                if response.status_code != 201:
                    with burst.lock:
                        burst.unexpected.append(("POST /patients", response.status_code, response.text))
                    return
                created = response.json()
                with burst.lock:
                    burst.patients.append(created)
                response = client.put(f"/patients/{created['id']}/screening-record", json=record)
                if response.status_code != 201:
                    with burst.lock:
                        burst.unexpected.append(("PUT screening-record", response.status_code, response.text))
                    return
                with burst.lock:
                    burst.records.append((created["id"], response.json()["version"]))
        except httpx.TransportError as error:
            with burst.lock:
                burst.cut_off.append(type(error).__name__)


def _audited_fields(row) -> set[str]:
    """The columns an insert of ``row`` is audited with: every one that holds a value."""
    state = inspect(row)
    return {attr.key for attr in state.mapper.column_attrs if getattr(row, attr.key) is not None}


def test_a_killed_server_loses_nothing_acknowledged_and_leaves_nothing_half_written(db, tmp_path):
    server, _ = seeded(db, tmp_path / "server.log")
    server.start()
    try:
        token = server.login("investigator")
        burst = Burst()
        started = threading.Barrier(WRITERS + 1)
        writers = [
            threading.Thread(target=_write_until_cut_off, args=(server, token, w, burst, started))
            for w in range(WRITERS)
        ]
        for thread in writers:
            thread.start()
        started.wait(timeout=30)
        time.sleep(KILL_AFTER_SECONDS)
        deadline = time.monotonic() + 60
        while len(burst.records) < ACKNOWLEDGED_BEFORE_KILL and time.monotonic() < deadline:
            if burst.unexpected or not all(thread.is_alive() for thread in writers):
                break
            time.sleep(0.02)
        server.kill()
        for thread in writers:
            thread.join(60)
        assert not any(thread.is_alive() for thread in writers)
        assert not burst.unexpected, (burst.unexpected, server.output())
        # The kill really came mid-burst: every writer was cut off, after writes were acknowledged.
        assert len(burst.cut_off) == WRITERS, burst.cut_off
        assert len(burst.records) >= ACKNOWLEDGED_BEFORE_KILL, (len(burst.patients), len(burst.records))

        server.start()
        with server.client(token) as client:
            listed = client.get("/patients")
    finally:
        server.stop()

    with db.session(write=False) as session:
        patients = session.scalars(select(Patient).order_by(Patient.id)).all()
        records = session.scalars(select(ScreeningRecordVersion).order_by(ScreeningRecordVersion.id)).all()
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        existing = {
            name: {str(key) for key in session.scalars(select(table.primary_key.columns[0]))}
            for name, table in Base.metadata.tables.items()
        }
        chain = verify_chain(session)

        inserted: dict[tuple[str, str], dict[str, str | None]] = defaultdict(dict)
        for entry in entries:
            if entry.action == "insert":
                inserted[entry.entity, entry.entity_id][entry.field] = entry.new_value

        # Nothing acknowledged was lost.
        stored_patients = {p.id: (p.screening_number, p.full_name) for p in patients}
        for created in burst.patients:
            assert stored_patients.get(created["id"]) == (created["screening_number"], created["full_name"])
        stored_records = {(r.patient_id, r.version) for r in records}
        assert set(burst.records) <= stored_records

        # Every row that is there was written whole: the row and all its audit entries.
        assert [p.screening_number for p in patients] == [f"S-{n:04d}" for n in range(1, len(patients) + 1)]
        for patient in patients:
            audited = inserted.get(("patient", str(patient.id)), {})
            assert set(audited) == _audited_fields(patient), patient.id
            assert audited["screening_number"] == f'"{patient.screening_number}"'
            assert audited["full_name"] == f'"{patient.full_name}"'
            assert audited["date_of_birth"] == patient.date_of_birth.isoformat()
        for record in records:
            assert record.patient_id in stored_patients
            audited = inserted.get(("screening_record", str(record.id)), {})
            assert set(audited) == _audited_fields(record), record.id
            assert (audited["patient_id"], audited["version"]) == (
                str(record.patient_id),
                str(record.version),
            )

    # No audit entry speaks of a row that is not there (a rolled-back write left no trace).
    orphans = [
        (e.id, e.action, e.entity, e.entity_id)
        for e in entries
        if e.action != "delete" and e.entity_id not in existing.get(e.entity, set())
    ]
    assert not orphans, orphans[:20]
    assert chain.ok, chain
    assert chain.entries == len(entries)

    verified = subprocess.run(
        [sys.executable, "-m", "nettrial", "audit", "verify", "--database-url", db.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{len(entries)} entries" in verified.stdout

    assert listed.status_code == 200, listed.text
    assert [(p["id"], p["full_name"]) for p in listed.json()] == [(p.id, p.full_name) for p in patients]
