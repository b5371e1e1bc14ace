"""The SDTM findings domains: LB, VS, and TU, TR and RS from the tumour assessments.

Source: CDISC SDTM IG 3.x domain models. LB and VS from their tables (a lab value also in its
canonical unit, with the reference range in the same unit); TU/TR/RS from the tumour assessments,
each recurrence site a new lesion.
"""

from __future__ import annotations

from collections import defaultdict

from nettrial.exceptions import RuleDataError
from nettrial.export.sdtm_sources import Rows, Sources, exact_text, ordered
from nettrial.store.models import LabResult, TumourAssessment, VitalSigns
from nettrial.units import same_unit_limit, to_canonical

# --- LB and VS -----------------------------------------------------------------------------------


def _range_indicator(src: Sources, lab: LabResult) -> str | None:
    if lab.lln is not None and lab.value < lab.lln:
        return src.terms["nrind"]["low"]
    if lab.uln is not None and lab.value > lab.uln:
        return src.terms["nrind"]["high"]
    return None if lab.lln is None and lab.uln is None else src.terms["nrind"]["normal"]


def laboratory(src: Sources) -> Rows:
    rows = []
    for lab in ordered(src, LabResult, LabResult.collected_on):
        standard = to_canonical(lab.test, lab.value, lab.unit)
        limits = {
            name: None if limit is None else same_unit_limit(lab.test, limit, lab.unit, name)
            for name, limit in (("lln", lab.lln), ("uln", lab.uln))
        }
        rows.append(
            {
                "USUBJID": src.subjects[lab.participant_id].usubjid,
                "LBSPID": str(lab.id),
                **src.term("lab", lab.test),
                "LBORRES": exact_text(lab.value),
                "LBORRESU": lab.unit,
                "LBORNRLO": exact_text(lab.lln),
                "LBORNRHI": exact_text(lab.uln),
                "LBSTRESC": exact_text(standard.value),
                "LBSTRESN": standard.value,
                "LBSTRESU": standard.unit,
                "LBSTNRLO": limits["lln"],
                "LBSTNRHI": limits["uln"],
                "LBNRIND": _range_indicator(src, lab),
                "LBTOX": lab.ctcae_term,
                "LBTOXGR": None if lab.ctcae_grade is None else str(lab.ctcae_grade),
                "VISIT": lab.visit_code,
                "LBDTC": lab.collected_on.isoformat(),
                "LBDY": src.day(lab.participant_id, lab.collected_on),
            }
        )
    return rows


def vital_signs(src: Sources) -> Rows:
    rows = []
    for vs in ordered(src, VitalSigns, VitalSigns.measured_on):
        for column, test in src.terms["vital"].items():
            value = getattr(vs, column)
            if value is None:
                continue
            rows.append(
                {
                    "USUBJID": src.subjects[vs.participant_id].usubjid,
                    "VSSPID": str(vs.id),
                    "VSTESTCD": test["VSTESTCD"],
                    "VSTEST": test["VSTEST"],
                    "VSORRES": exact_text(value),
                    "VSORRESU": test["unit"],
                    "VSSTRESC": exact_text(value),
                    "VSSTRESN": float(value),
                    "VSSTRESU": test["unit"],
                    "VISIT": vs.visit_code,
                    "VSDTC": vs.measured_on.isoformat(),
                    "VSDY": src.day(vs.participant_id, vs.measured_on),
                }
            )
    return rows


# --- TU, TR, RS --------------------------------------------------------------------------------------


def tumours(src: Sources) -> dict[str, Rows]:
    """RS: every assessment's result; TU: each recurrence site when first seen (a new lesion); TR: the
    lesion present at each assessment that reports its site."""
    found: dict[str, Rows] = {"TU": [], "TR": [], "RS": []}
    ident, state, response = (src.terms[k] for k in ("tumour_identification", "tumour_result", "response"))
    evaluator = src.trial["evaluator"]
    lesions: dict[int, dict[str, str]] = defaultdict(dict)  # participant -> site -> link id
    for a in ordered(src, TumourAssessment, TumourAssessment.assessed_on):
        who, on = src.subjects[a.participant_id].usubjid, a.assessed_on.isoformat()
        common = {"USUBJID": who, "VISIT": a.visit_code}
        day = src.day(a.participant_id, a.assessed_on)
        result = response["results"].get(a.result)
        if result is None:
            raise RuleDataError(src.where, f"terms.response.results: no term for {a.result!r}")
        found["RS"].append(
            {
                **common,
                "RSSPID": str(a.id),
                **{k: response[k] for k in ("RSTESTCD", "RSTEST", "RSCAT")},
                "RSORRES": result,
                "RSSTRESC": result,
                "RSEVAL": evaluator,
                "RSDTC": on,
                "RSDY": day,
            }
        )
        method = src.term("method", a.method)
        for site in a.recurrence_sites or []:
            known = lesions[a.participant_id]
            if site not in known:
                known[site] = f"{ident['TULNKID_PREFIX']}{len(known) + 1:02d}"
                found["TU"].append(
                    {
                        **common,
                        "TUSPID": str(a.id),
                        "TULNKID": known[site],
                        **{k: ident[k] for k in ("TUTESTCD", "TUTEST", "TUORRES")},
                        "TUSTRESC": ident["TUORRES"],
                        "TULOC": src.term("recurrence_site", site),
                        "TUMETHOD": method,
                        "TUEVAL": evaluator,
                        "TUDTC": on,
                        "TUDY": day,
                    }
                )
            found["TR"].append(
                {
                    **common,
                    "TRSPID": str(a.id),
                    "TRLNKID": known[site],
                    **{k: state[k] for k in ("TRTESTCD", "TRTEST", "TRORRES")},
                    "TRSTRESC": state["TRORRES"],
                    "TRMETHOD": method,
                    "TREVAL": evaluator,
                    "TRDTC": on,
                    "TRDY": day,
                }
            )
    return found
