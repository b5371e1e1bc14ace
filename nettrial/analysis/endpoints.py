"""Endpoint settings: the protocol file's ``endpoints:`` section as typed settings, validated on load.

Source: protocol.md 4, every definition an *assumption* kept as data in the protocol file, so that
the study team changes it there and a statistician can change any rule for one analysis (a
sensitivity analysis) without editing the file: ``endpoint_settings(protocol, **overrides)``.

- **RFS** (primary), from the file: origin (first dose), events (local, nodal or distant recurrence,
  death), landmarks (12, 24, 36 months; 24 the primary), the confidence-interval method (log-log)
  and four censoring rules:

  ``no_event``
      no event: censored at the last adequate imaging without recurrence
      (``last_adequate_imaging_without_recurrence``), or at the last date known alive
      (``last_known_alive``, a common sensitivity analysis);
  ``new_anticancer_therapy``
      new anticancer therapy before the event: censored at the last adequate imaging before that
      therapy (``last_adequate_imaging_before_therapy``); ``None`` switches the rule off;
  ``event_after_missed_scans``
      an event after at least ``missed_scheduled_scans_at_least`` missed scheduled scans: censored at
      the last adequate imaging before the gap; ``None`` switches the rule off;
  ``no_post_baseline_imaging``
      censored without any imaging after the origin: at day 1 (``day_1``), or left out of the
      analysis and reported as excluded (``exclude``).

- **DMFS** and **OS**: the file names them only. DMFS counts distant recurrence (liver, other distant)
  or death, with RFS's origin, landmarks, interval and censoring rules; OS counts death and censors
  at the last date known alive. Fields given in the file's DMFS or OS entry replace these defaults.
- **SAFETY**: treatment-emergent = onset from the first dose to
  ``treatment_emergent_until_days_after_last_dose`` days after the last dose (30).

Every setting carries its source: the file's (``assumption (protocol.md 4)``), the default above, or
``set by the caller`` with the file's value beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from nettrial.exceptions import InputError, RuleDataError
from nettrial.protocol.model import Protocol

EventKind = Literal["local_recurrence", "nodal_recurrence", "distant_recurrence", "death"]
EVENT_KINDS: tuple[str, ...] = ("local_recurrence", "nodal_recurrence", "distant_recurrence", "death")
# A recurrence site as the store records it (store.assessments.RECURRENCE_SITES) -> the event it is.
SITE_EVENTS: Mapping[str, str] = {
    "local": "local_recurrence",
    "nodal": "nodal_recurrence",
    "liver": "distant_recurrence",
    "other_distant": "distant_recurrence",
}
# The intervals the analysis computes (analysis/survival.py: lifelines gives the log-log one only).
CI_METHODS = ("log-log",)
PARAMETERS = ("RFS", "DMFS", "OS")
CENSORING_RULES = (
    "no_event",
    "new_anticancer_therapy",
    "event_after_missed_scans",
    "no_post_baseline_imaging",
)
ENDPOINT_FIELDS = (
    "origin",
    "events",
    "not_events",
    "landmarks_months",
    "primary_landmark_months",
    "ci_method",
)
SAFETY_FIELDS = ("treatment_emergent_until_days_after_last_dose",)
CALLER = "set by the caller"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MissedScans(_Model):
    """An event after this many consecutive missed scheduled scans is censored before the gap."""

    missed_scheduled_scans_at_least: int = Field(ge=1)
    censor_at: Literal["last_adequate_imaging_before_gap"] = "last_adequate_imaging_before_gap"


class Censoring(_Model):
    """The censoring rules of one time-to-event endpoint (see the module docstring)."""

    no_event: Literal["last_adequate_imaging_without_recurrence", "last_known_alive"]
    new_anticancer_therapy: Literal["last_adequate_imaging_before_therapy"] | None = None
    event_after_missed_scans: MissedScans | None = None
    no_post_baseline_imaging: Literal["day_1", "exclude"] = "day_1"


class TimeToEvent(_Model):
    """One time-to-event endpoint: what starts the clock, what stops it, and how it is censored.

    ``sources`` names where each setting comes from (the protocol file, a default, or the caller).
    """

    id: str
    name: str
    origin: Literal["first_dose"]
    events: tuple[EventKind, ...] = Field(min_length=1)
    not_events: tuple[str, ...] = ()
    landmarks_months: tuple[int | float, ...] = ()
    primary_landmark_months: int | float | None = None
    ci_method: Literal["log-log"]
    censoring: Censoring
    source: str
    sources: dict[str, str] = {}

    @field_validator("events")
    @classmethod
    def _once_each(cls, events: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(events)) != len(events):
            raise ValueError(f"{list(events)} names an event twice")
        return events

    @field_validator("landmarks_months")
    @classmethod
    def _increasing(cls, landmarks: tuple[float, ...]) -> tuple[float, ...]:
        if any(m <= 0 for m in landmarks) or list(landmarks) != sorted(set(landmarks)):
            raise ValueError(f"{list(landmarks)} must be positive and increasing")
        return landmarks

    @field_validator("primary_landmark_months")
    @classmethod
    def _a_landmark(cls, primary: float | None, info: ValidationInfo) -> float | None:
        landmarks = info.data.get("landmarks_months", ())
        if primary is not None and primary not in landmarks:
            raise ValueError(f"{primary} is not one of the landmarks {list(landmarks)}")
        return primary

    def counts(self, event: str) -> bool:
        """Whether ``event`` (an ``EVENT_KINDS`` name) ends the clock for this endpoint."""
        return event in self.events

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def explain(self) -> str:
        def cited(name: str) -> str:
            return f" [{self.sources[name]}]" if name in self.sources else ""

        rules = []
        for name in CENSORING_RULES:
            value = getattr(self.censoring, name)
            shown = "off" if value is None else value if isinstance(value, str) else _missed_text(value)
            rules.append(f"  {name}: {shown}{cited(name)}")
        landmarks = ", ".join(f"{m:g}" for m in self.landmarks_months) or "none"
        return "\n".join(
            [
                f"{self.id} ({self.name}), {self.source}",
                f"  origin: {self.origin}{cited('origin')}",
                f"  events: {', '.join(self.events)}{cited('events')}",
                f"  landmarks (months): {landmarks}; interval: {self.ci_method}{cited('ci_method')}",
                "  censoring:",
                *(f"  {line}" for line in rules),
            ]
        )


def _missed_text(rule: MissedScans) -> str:
    return f"{rule.censor_at} after >= {rule.missed_scheduled_scans_at_least} missed scheduled scans"


class Safety(_Model):
    """Treatment-emergent adverse events: onset from the first dose to N days after the last dose."""

    treatment_emergent_until_days_after_last_dose: int = Field(ge=0)
    source: str


class EndpointSettings(_Model):
    """Every endpoint's settings, as the analysis runs them."""

    rfs: TimeToEvent
    dmfs: TimeToEvent
    os: TimeToEvent
    safety: Safety

    def endpoint(self, parameter: str) -> TimeToEvent:
        """The settings of ``parameter`` (RFS, DMFS or OS)."""
        if parameter not in PARAMETERS:
            raise InputError(
                "parameter", f"{parameter!r} is not a time-to-event endpoint", allowed=PARAMETERS
            )
        return getattr(self, parameter.lower())

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def explain(self) -> str:
        safety = self.safety
        return "\n".join(
            [
                *(self.endpoint(p).explain() for p in PARAMETERS),
                f"SAFETY: treatment-emergent until {safety.treatment_emergent_until_days_after_last_dose} "
                f"days after the last dose [{safety.source}]",
            ]
        )


# --- reading the file ------------------------------------------------------------------------------


def _cite(source: Any) -> str:
    """The file's ``source: assumption`` with the section of the spec it stands for."""
    text = str(source or "assumption")
    return text if "protocol.md" in text else f"{text} (protocol.md 4)"


def _entries(section: Mapping[str, Any], where: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each endpoint of ``primary`` and ``secondary`` by id, with its path in the file."""
    if not isinstance(section, Mapping):
        raise RuleDataError(where, "endpoints: must be a mapping with primary and secondary lists")
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for group in ("primary", "secondary"):
        items = section.get(group) or []
        if not isinstance(items, list):
            raise RuleDataError(where, f"endpoints.{group}: must be a list of endpoints")
        for i, item in enumerate(items):
            path = f"endpoints.{group}.{i}"
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                raise RuleDataError(where, f"{path}.id: each endpoint needs an id")
            if item["id"] in found:
                raise RuleDataError(where, f"{path}.id: endpoint {item['id']} is defined twice")
            found[item["id"]] = (path, dict(item))
    unknown = sorted(set(section) - {"primary", "secondary"})
    if unknown:
        raise RuleDataError(where, f"endpoints.{unknown[0]}: unknown key (allowed: primary, secondary)")
    if "RFS" not in found:
        raise RuleDataError(where, "endpoints.primary: recurrence-free survival (id RFS) is not defined")
    return found


def _rfs(entry: dict[str, Any]) -> dict[str, Any]:
    """RFS as the file gives it; a setting the file leaves out takes the model's default."""
    source = _cite(entry.get("source"))
    given = set(entry) | set(entry.get("censoring") or {})
    names = ("origin", "events", "landmarks_months", "ci_method", *CENSORING_RULES)
    sources = {n: source if n in given else "default: not in the protocol file (endpoints.py)" for n in names}
    return {**{k: v for k, v in entry.items() if k != "source"}, "source": source, "sources": sources}


# What protocol.md 4 leaves to the analysis for the endpoints it only names.
_DEFAULT_EVENTS = {
    "DMFS": (
        ["distant_recurrence", "death"],
        "default: distant recurrence or death (protocol.md 4 names DMFS)",
    ),
    "OS": (["death"], "default: death from any cause (protocol.md 4 names OS)"),
}
_OS_CENSORING = "default: censored at the last date known alive (protocol.md 4 names OS)"


def _derived(rfs: dict[str, Any], entry: dict[str, Any] | None, parameter: str) -> dict[str, Any]:
    """DMFS or OS: defaults from RFS (see the module docstring), then the fields the file gives."""
    entry = dict(entry or {"id": parameter, "name": parameter})
    shared = ("origin", "landmarks_months", "primary_landmark_months", "ci_method")
    data = {k: rfs[k] for k in shared if k in rfs}
    sources = {k: rfs["sources"][k] for k in ("origin", "landmarks_months", "ci_method")}
    data["events"], sources["events"] = _DEFAULT_EVENTS[parameter]
    if parameter == "DMFS":
        data["censoring"] = dict(rfs.get("censoring") or {})
        sources.update({rule: rfs["sources"][rule] for rule in CENSORING_RULES})
    else:
        data["censoring"] = {"no_event": "last_known_alive"}
        sources.update(dict.fromkeys(CENSORING_RULES, _OS_CENSORING))
    own = _cite(entry.get("source"))
    for key, value in entry.items():
        if key == "censoring" and isinstance(value, Mapping):
            data["censoring"] = {**data["censoring"], **value}
            sources.update(dict.fromkeys(value, own))
        elif key != "source":
            data[key] = value
            if key not in ("id", "name"):
                sources[key] = own
    return {**data, "source": own, "sources": sources}


def _where(protocol: Protocol) -> str:
    return f"protocol {protocol.identity.nct_id} version {protocol.protocol_version}"


def _split(key: str) -> tuple[str | None, str]:
    """``DMFS__events`` -> ("DMFS", "events"); ``events`` -> (None, "events")."""
    head, sep, tail = key.partition("__")
    return (head, tail) if sep else (None, key)


Changes = dict[str | None, dict[str, tuple[str, Any]]]  # target -> setting -> (override key, value)


def _grouped(overrides: Mapping[str, Any]) -> Changes:
    """The overrides by the endpoint they change (None: RFS and what takes it from RFS)."""
    changes: Changes = {}
    allowed = [*ENDPOINT_FIELDS, *CENSORING_RULES, *SAFETY_FIELDS]
    for key, value in overrides.items():
        target, name = _split(key)
        if target is not None and target not in (*PARAMETERS, "SAFETY"):
            raise InputError(key, f"{target} is not an endpoint", allowed=[*PARAMETERS, "SAFETY"])
        fits = name in SAFETY_FIELDS if target == "SAFETY" else name not in SAFETY_FIELDS or target is None
        if name not in allowed or not fits:
            raise InputError(key, "is not an endpoint setting", allowed=allowed)
        if name == "event_after_missed_scans" and isinstance(value, int) and not isinstance(value, bool):
            value = {"missed_scheduled_scans_at_least": value}  # a plain number: the scans
        changes.setdefault("SAFETY" if name in SAFETY_FIELDS else target, {})[name] = (key, value)
    return changes


def _apply(data: dict[str, Any], changes: Mapping[str, tuple[str, Any]]) -> None:
    """Change settings of one endpoint's raw data, recording the caller as their source."""
    for name, (_key, value) in changes.items():
        if name in CENSORING_RULES:
            previous = (data.get("censoring") or {}).get(name)
            data["censoring"] = {**(data.get("censoring") or {}), name: value}
        else:
            previous = data.get(name)
            data[name] = value
        data["sources"] = {**data.get("sources", {}), name: f"{CALLER} (protocol file: {previous!r})"}


def _raw(protocol: Protocol, changes: Changes) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each endpoint's settings before validation, and where each is in the file.

    Unprefixed changes apply to RFS before DMFS and OS take their defaults from it; prefixed ones
    apply to their endpoint alone.
    """
    entries = _entries(protocol.endpoints, _where(protocol))
    paths = {"RFS": entries["RFS"][0]}
    rfs = _rfs(entries["RFS"][1])
    _apply(rfs, changes.get(None, {}))
    raw = {"RFS": rfs}
    for parameter in ("DMFS", "OS"):
        path, entry = entries.get(parameter, (f"endpoints ({parameter} not given)", None))
        raw[parameter], paths[parameter] = _derived(rfs, entry, parameter), path
        _apply(raw[parameter], changes.get(parameter, {}))
    raw["RFS"] = {**rfs}
    _apply(raw["RFS"], changes.get("RFS", {}))
    path, entry = entries.get("SAFETY", ("endpoints (SAFETY not given)", {}))
    days = entry.get("treatment_emergent_until_days_after_last_dose", None if "SAFETY" in entries else 30)
    raw["SAFETY"] = {
        "treatment_emergent_until_days_after_last_dose": days,
        "source": _cite(entry.get("source")),
    }
    for name, (_key, value) in changes.get("SAFETY", {}).items():
        raw["SAFETY"] = {**raw["SAFETY"], name: value, "source": f"{CALLER} (protocol file: {days!r})"}
    paths["SAFETY"] = path
    return raw, paths


def _build(protocol: Protocol, changes: Changes) -> EndpointSettings:
    raw, paths = _raw(protocol, changes)
    built: dict[str, Any] = {}
    for parameter, data in raw.items():
        model = Safety if parameter == "SAFETY" else TimeToEvent
        try:
            built[parameter] = model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = [str(p) for p in first["loc"]]
            if not changes:
                location = ".".join([paths[parameter], *loc])
                raise RuleDataError(_where(protocol), f"{location}: {first['msg']}") from None
            # The override that set the failing setting (censoring.<rule> or the field itself).
            name = loc[1] if loc[:1] == ["censoring"] and len(loc) > 1 else loc[0] if loc else ""
            keys = [k for group in changes.values() for n, (k, _v) in group.items() if n == name]
            field = keys[0] if keys else f"{parameter}.{'.'.join(loc)}"
            raise InputError(field, f"{parameter} {'.'.join(loc)}: {first['msg']}") from None
    return EndpointSettings(rfs=built["RFS"], dmfs=built["DMFS"], os=built["OS"], safety=built["SAFETY"])


def endpoint_settings(protocol: Protocol, **overrides: Any) -> EndpointSettings:
    """The protocol's endpoint settings, with any setting changed for this analysis.

    Parameters
    ----------
    protocol
        A loaded protocol (``nettrial.protocol.load.load_protocol``).
    **overrides
        Settings to change. A censoring rule (``no_event``, ``new_anticancer_therapy``,
        ``event_after_missed_scans``, ``no_post_baseline_imaging``) or an endpoint field (``events``,
        ``landmarks_months``, ``primary_landmark_months``, ``ci_method``, ...) changes RFS, and DMFS
        and OS where they take it from RFS (DMFS its censoring rules, both the landmarks and the
        interval), exactly as the same change in the file would. Prefix a name with ``RFS__``,
        ``DMFS__`` or ``OS__`` to change that endpoint alone. ``None`` switches the therapy and
        missed-scan rules off; ``event_after_missed_scans`` also takes a plain number (the scans).
        ``treatment_emergent_until_days_after_last_dose`` changes the safety window.

    Returns
    -------
    EndpointSettings
        Validated settings; ``explain()`` lists each rule with its source.

    Raises
    ------
    RuleDataError
        The protocol file's ``endpoints:`` section is malformed (the message names the key).
    InputError
        An override names no setting or has a value the setting does not allow (``field`` is the key).
    """
    from_file = _build(protocol, {})  # the file's own problems are the file's, whatever the caller asks
    return _build(protocol, _grouped(overrides)) if overrides else from_file
