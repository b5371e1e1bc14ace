"""Service commands on a real database: schema, users, audit verification, backup and restore."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import text

from nettrial.cli import main
from nettrial.store.db import connect
from tests import factories


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin)


def test_db_upgrade_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first, second = run("db", "upgrade", "--database-url", url), run("db", "upgrade", "--database-url", url)
    assert first.exit_code == second.exit_code == 0
    assert "revision 0002" in second.output


def test_site_and_user_add_with_the_password_from_stdin(db):
    url = db.url
    assert run("site", "add", "ZJU2", "Second Affiliated Hospital", "--database-url", url).exit_code == 0
    result = run(
        "user", "add", "lihua", "--role", "coordinator", "--full-name", "Li Hua", "--site", "ZJU2",
        "--password-stdin", "--database-url", url, stdin="a long password\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    api = factories.client(db)
    token = api.post("/api/v1/auth/token", data={"username": "lihua", "password": "a long password"})
    assert token.status_code == 200
    args = ("user", "add", "lihua", "--role", "monitor", "--full-name", "X", "--password-stdin")
    taken = run(*args, "--database-url", url, stdin="another password\n")
    assert taken.exit_code == 2
    assert taken.output.startswith("error: username:")


def test_audit_verify_reports_the_first_broken_entry(db):
    factories.seed(db)
    ok = run("audit", "verify", "--database-url", db.url)
    assert ok.exit_code == 0 and "audit chain intact" in ok.output
    with db.session() as session:
        if db.url.startswith("postgresql"):
            session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        session.execute(text("UPDATE audit_log SET reason = 'edited' WHERE id = 7"))
    broken = run("audit", "verify", "--database-url", db.url)
    assert broken.exit_code == 1
    assert "broken at entry 7" in broken.output


def test_backup_then_restore_into_an_empty_database(db, tmp_path):
    users = factories.seed(db)
    factories.enrolled(db, users["coordinator"])
    file = tmp_path / "study.json.gz"
    saved = run("backup", str(file), "--database-url", db.url)
    assert saved.exit_code == 0, saved.output
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    restored = run("restore", str(file), "--database-url", target)
    assert restored.exit_code == 0, restored.output
    assert "audit chain intact" in restored.output
    again = run("restore", str(file), "--database-url", target)
    assert again.exit_code == 2
    assert "empty database" in again.output
    connect(target).dispose()
