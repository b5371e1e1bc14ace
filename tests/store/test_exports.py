"""Exports in the audit trail (who, what, which form, cut-off, files), and who may take which form."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from nettrial.api.deps import may
from nettrial.exceptions import InputError, PermissionDeniedError
from nettrial.store import exports
from nettrial.store.audit import verify_chain
from nettrial.store.models import AuditEntry
from nettrial.store.users import ROLES
from tests import factories


def _record(db, user_id, username, fmt="fhir", pseudonymised=False, cutoff=dt.date(2026, 11, 23)):
    with db.session() as session:
        exports.record_export(
            session,
            user_id=user_id,
            username=username,
            format=fmt,
            cutoff=cutoff,
            pseudonymised=pseudonymised,
            files=[Path("/tmp/somewhere/private/fhir-bundle.json")],
            counts={"Patient": 35},
        )


def test_an_export_is_an_audited_event_with_who_what_form_and_cutoff(db):
    users = factories.seed(db)
    _record(db, users["statistician"], "statistician", pseudonymised=True)
    with db.session(write=False) as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert (entry.action, entry.entity, entry.entity_id) == ("event", "export", "fhir")
        assert (entry.user_id, entry.username, entry.field) == (
            users["statistician"],
            "statistician",
            "export (pseudonymised)",
        )
        detail = json.loads(entry.new_value)
        # Only the file's name: where it was written is the exporter's machine.
        assert detail == {
            "format": "fhir",
            "form": "pseudonymised",
            "cutoff": "2026-11-23",
            "files": ["fhir-bundle.json"],
            "counts": {"Patient": 35},
        }
        assert verify_chain(session).ok  # in the same hash chain as every change


def test_recent_exports_newest_first_and_by_person(db):
    users = factories.seed(db)
    _record(db, users["investigator"], "investigator", fmt="sdtm")
    _record(db, users["statistician"], "statistician", fmt="fhir", pseudonymised=True)
    _record(db, users["monitor"], "monitor", fmt="odm", cutoff=dt.date(2026, 10, 1))
    with db.session(write=False) as session:
        every = exports.recent_exports(session)
        mine = exports.recent_exports(session, username="statistician")
        latest = exports.recent_exports(session, limit=1)
    assert [(r.username, r.format) for r in every] == [
        ("monitor", "odm"),
        ("statistician", "fhir"),
        ("investigator", "sdtm"),
    ]
    assert every[0].cutoff == dt.date(2026, 10, 1) and not every[0].pseudonymised
    assert [(r.username, r.pseudonymised, r.files) for r in mine] == [
        ("statistician", True, ("fhir-bundle.json",))
    ]
    assert [r.format for r in latest] == ["odm"]
    assert every[1].to_dict()["cutoff"] == "2026-11-23"
    assert "statistician exported fhir (pseudonymised, cut-off 2026-11-23)" in every[1].explain()


def test_files_are_kept_by_their_place_in_the_export_folder(db):
    users = factories.seed(db)
    root = Path("/home/someone/exports/sdtm")
    with db.session() as session:
        exports.record_export(
            session, user_id=users["monitor"], username="monitor", format="sdtm", cutoff=dt.date(2026, 1, 1),
            pseudonymised=False, files=[root / "dm.csv", root / "xpt" / "dm.xpt", Path("/elsewhere/x.txt")],
            root=root,
        )  # fmt: skip
        (recorded,) = exports.recent_exports(session)
    assert recorded.files == ("dm.csv", "xpt/dm.xpt", "x.txt")  # nothing of the machine's folders


def test_logins_and_other_events_are_not_exports(db):
    factories.seed(db)
    factories.login(factories.client(db), "investigator")  # a login event
    with db.session(write=False) as session:
        assert exports.recent_exports(session) == []


def test_an_export_without_a_person_is_refused(db):
    factories.seed(db)
    with db.session() as session, pytest.raises(InputError, match="username"):
        exports.record_export(
            session, user_id=None, username=" ", format="fhir", cutoff=dt.date(2026, 1, 1),
            pseudonymised=True, files=[],
        )  # fmt: skip


# --- who may take which form (the role matrix's answer) -------------------------------------------

IDENTIFIED, PSEUDONYMISED, REFUSED = False, True, "refused"
EXPECTED = {
    # role: (not said, asked identified, asked pseudonymised)
    "investigator": (IDENTIFIED, IDENTIFIED, PSEUDONYMISED),
    "monitor": (IDENTIFIED, IDENTIFIED, PSEUDONYMISED),
    "statistician": (PSEUDONYMISED, REFUSED, PSEUDONYMISED),
    "coordinator": (REFUSED, REFUSED, REFUSED),
    "admin": (REFUSED, REFUSED, REFUSED),
}


@pytest.mark.parametrize("role", ROLES)
def test_the_form_each_role_gets(role):
    for requested, expected in zip((None, "identified", "pseudonymised"), EXPECTED[role], strict=True):
        if expected == REFUSED:
            with pytest.raises(PermissionDeniedError):
                exports.choose_form(role, lambda action: may(role, action), requested)
        else:
            assert exports.choose_form(role, lambda action: may(role, action), requested) is expected


def test_an_unknown_form_is_bad_input():
    with pytest.raises(InputError, match="identity"):
        exports.choose_form("investigator", lambda action: True, "anonymised")


def test_the_cutoff_defaults_to_today_and_may_not_be_in_the_future():
    today = dt.datetime.now(dt.UTC).date()
    assert exports.cutoff_date(None, today) == today
    assert exports.cutoff_date("  ", today) == today
    assert exports.cutoff_date("2026-11-23", today) == dt.date(2026, 11, 23)
    # A site east of UTC may already be on tomorrow (store/_dates.py); the day after is the future.
    assert exports.cutoff_date((today + dt.timedelta(days=1)).isoformat(), today) == today + dt.timedelta(
        days=1
    )
    with pytest.raises(InputError, match="future"):
        exports.cutoff_date((today + dt.timedelta(days=2)).isoformat(), today)
    with pytest.raises(InputError, match="cutoff"):
        exports.cutoff_date("23/11/2026", today)
