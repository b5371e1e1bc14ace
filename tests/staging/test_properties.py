"""Properties that must hold for every site, edition and finding (hypothesis).

- Adding positive nodes or metastases never lowers a known stage.
- Removing data never turns an unknown stage into a known one, and never narrows what is possible.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from nettrial.staging.engine import stage, stage_rank
from nettrial.staging.findings import Findings
from nettrial.staging.tables import m_category, site_tables, sites

SITES = sorted(sites())
EDITIONS = ["8", "9"]
METASTASIS_SITES = sorted(m_category()[1])
SIZES = st.one_of(
    st.sampled_from([1, 9, 9.9, 10, 10.1, 11, 19, 19.9, 20, 20.1, 21, 40, 40.1, 41]),
    st.floats(min_value=0.5, max_value=200, allow_nan=False).map(lambda x: round(x, 1)),
)


@st.composite
def cases(draw):
    site = draw(st.sampled_from(SITES))
    edition = draw(st.sampled_from(EDITIONS))
    tables = site_tables(site, edition)
    examined = draw(st.integers(min_value=0, max_value=40))
    positive = draw(st.integers(min_value=0, max_value=examined))
    uses_mass = "mesenteric_mass_mm" in tables.fields()
    findings = Findings(
        size_mm=draw(st.none() | SIZES),
        extent=draw(st.none() | st.sampled_from(sorted(tables.extent))),
        nodes_positive=draw(st.none() | st.just(positive)),
        nodes_examined=draw(st.none() | st.just(examined)),
        mesenteric_mass_mm=draw(st.none() | st.sampled_from([0, 10, 20, 21, 35])) if uses_mass else None,
        metastasis=draw(st.none() | st.lists(st.sampled_from(METASTASIS_SITES), max_size=3).map(tuple)),
    )
    return site, edition, findings


def _group(site, edition, findings):
    return stage(site, edition, findings=findings)


@settings(max_examples=400, deadline=None)
@given(cases(), st.integers(min_value=1, max_value=20))
def test_adding_positive_nodes_never_lowers_the_stage(case, extra):
    site, edition, findings = case
    if findings.nodes_positive is None or findings.nodes_examined is None:
        return
    more = replace(
        findings,
        nodes_positive=findings.nodes_positive + extra,
        nodes_examined=findings.nodes_examined + extra,
    )
    before, after = _group(site, edition, findings), _group(site, edition, more)
    if before.stage_group and after.stage_group:
        assert stage_rank(after.stage_group) >= stage_rank(before.stage_group), (before, after)


@settings(max_examples=400, deadline=None)
@given(cases(), st.lists(st.sampled_from(METASTASIS_SITES), min_size=1, max_size=3))
def test_adding_metastases_never_lowers_the_stage(case, new_sites):
    site, edition, findings = case
    more = replace(findings, metastasis=tuple(sorted(set((findings.metastasis or ()) + tuple(new_sites)))))
    before, after = _group(site, edition, findings), _group(site, edition, more)
    assert after.stage_group == "IV"
    if before.stage_group:
        assert stage_rank(after.stage_group) >= stage_rank(before.stage_group)


@settings(max_examples=600, deadline=None)
@given(
    cases(),
    st.sets(
        st.sampled_from(
            [
                "size_mm",
                "extent",
                "nodes_positive",
                "nodes_examined",
                "mesenteric_mass_mm",
                "metastasis",
            ]
        ),
        min_size=1,
    ),
)
def test_removing_data_never_turns_unknown_into_known(case, removed):
    site, edition, findings = case
    fewer = replace(findings, **{name: None for name in removed})
    full, partial = _group(site, edition, findings), _group(site, edition, fewer)
    if full.stage_group is None:
        assert partial.stage_group is None, (full, partial)
    for axis in ("t", "n", "m"):
        full_cat, partial_cat = getattr(full, axis), getattr(partial, axis)
        if (
            partial_cat
            and "/" not in partial_cat
            and not partial_cat.endswith("X")
            and partial_cat != "unknown"
        ):
            # a category still known with less data is the same category
            assert full_cat == partial_cat, (axis, full, partial)
