"""Exports: the study in its standard forms (``nettrial.export.FORMATS``), downloaded and audited.

The page lists every format with what it writes, and a form per format for the roles that may export
(``export.identified``, ``export.pseudonymised``): the data cut-off, and the choice between an
identified and a pseudonymised export only for a role that has both. A role with neither sees the
formats and no form; a format not installed yet has no form either. Posting a form runs the export
into a temporary directory, records it in the audit trail (``store.exports``) and returns the file,
or a zip of the directory when the format writes several. The page lists the recent exports: all of
them to a role that reads the audit trail, one's own to anyone else.
"""

from __future__ import annotations

import datetime as dt
import io
import mimetypes
import tempfile
import zipfile
from dataclasses import replace
from importlib.util import find_spec
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from nettrial.api.deps import Actor, writing
from nettrial.exceptions import InputError, NotFoundError
from nettrial.export import FORMATS, exporter, record_result
from nettrial.protocol.model import Protocol
from nettrial.store import exports as store
from nettrial.web.pages._forms import FormState, entered, note_refusal, require_any
from nettrial.web.render import render
from nettrial.web.session import check_csrf, page_actor

router = APIRouter(include_in_schema=False)

READ = ("study.read", "study.read_pseudonymised")
EXPORT = (store.IDENTIFIED, store.PSEUDONYMISED)


def catalogue_key(name: str) -> str:
    """The i18n key of a format: ``exports.<key>`` names it, ``exports.<key>_what`` says what it writes."""
    return name.split("-")[0]  # ctgov-results -> ctgov


# Every format's key (tests/web/test_participant_views.py checks both catalogues hold their texts).
PLANNED = tuple(catalogue_key(name) for name in FORMATS)
# What a download is sent as, where the file's suffix alone would say less.
MEDIA_TYPES = {"fhir-bundle.json": "application/fhir+json"}


def available(name: str) -> bool:
    """Whether the format's module is installed (looked up, not imported)."""
    return find_spec(FORMATS[name][0]) is not None


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def exports_page(request: Request, *, posted: FormState | None = None, code: int = 200) -> Response:
    """The formats, a form for each the user may take, and the recent exports."""
    actor: Actor = request.state.actor
    may_export = any(actor.may(action) for action in EXPORT)
    formats = [
        {
            "name": name,
            "key": catalogue_key(name),
            "available": available(name),
            "form": posted
            if posted is not None and posted.name == name
            else FormState(name, {"cutoff": _today().isoformat(), "identity": "pseudonymised"}),
        }
        for name in FORMATS
    ]
    everyone = actor.may("audit.read")
    with request.app.state.db.session(write=False) as session:
        recent = store.recent_exports(session, username=None if everyone else actor.username)
    return render(
        request,
        "exports.html",
        status=code,
        formats=formats,
        may_export=may_export,
        choose=actor.may(store.IDENTIFIED) and actor.may(store.PSEUDONYMISED),
        fixed_form="identified" if actor.may(store.IDENTIFIED) else "pseudonymised",
        recent=recent,
        everyone=everyone,
        # A site east of UTC is already on the next day (store/_dates.py): its date is not the future.
        latest=(_today() + dt.timedelta(days=1)).isoformat(),
    )


@router.get("/exports")
def exports(request: Request):
    """The export formats, the forms the user may use, and the recent exports."""
    require_any(page_actor(request), *READ, *EXPORT)
    return exports_page(request)


@router.post("/exports/{format_name}")
async def download(request: Request, format_name: str):
    """Run one export as at the cut-off, record it in the audit trail, and send it as a download."""
    await check_csrf(request)
    actor = await run_in_threadpool(page_actor, request)
    require_any(actor, *EXPORT)
    if format_name not in FORMATS or not available(format_name):
        raise NotFoundError("export format", format_name)
    state = FormState(format_name, entered(await request.form()), language=actor.language)
    requested = state.values.get("identity") or None
    pseudonymised = store.choose_form(actor.role, actor.may, requested)
    try:
        cutoff = store.cutoff_date(state.values.get("cutoff"), _today())
    except InputError as error:
        note_refusal(state, error)
        return await run_in_threadpool(exports_page, request, posted=state, code=422)
    name, media_type, content = await run_in_threadpool(
        _export, request.app.state.db, request.app.state.protocol, actor, format_name, cutoff, pseudonymised
    )
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _export(
    db, protocol: Protocol, actor: Actor, name: str, cutoff: dt.date, pseudonymised: bool
) -> tuple[str, str, bytes]:
    """The export's file (name, media type, bytes), recorded in the audit trail before it is sent."""
    with tempfile.TemporaryDirectory(prefix="nettrial-export-") as folder:
        out = Path(folder) / name
        with db.session(write=False) as session:
            result = exporter(name)(session, protocol, out, cutoff=cutoff, pseudonymised=pseudonymised)
        files = sorted(result.files)  # recorded and zipped in this order
        with writing(db, actor) as session:
            result = replace(result, files=tuple(files))
            record_result(session, result, user_id=actor.user_id, username=actor.username, root=out)
        if len(files) == 1:
            only = files[0]
            media_type = MEDIA_TYPES.get(only.name) or mimetypes.guess_type(only.name)[0]
            return only.name, media_type or "application/octet-stream", only.read_bytes()
        zipped = f"{protocol.identity.nct_id}-{name}-{cutoff.isoformat()}.zip"
        return zipped, "application/zip", _zip(out, files, cutoff)


def _zip(folder: Path, files: list[Path], cutoff: dt.date) -> bytes:
    """The files as a zip, each under its path in the export's folder, dated the cut-off (repeatable)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            entry = zipfile.ZipInfo(
                path.relative_to(folder).as_posix(), (cutoff.year, cutoff.month, cutoff.day, 0, 0, 0)
            )
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    return buffer.getvalue()
