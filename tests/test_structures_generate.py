"""Generation of SiO2 polymorphs from AFLOW AB2 prototypes (one tiny CHGNet relaxation)."""

from __future__ import annotations

import numpy as np
import pytest

from coreloss.structures import check_sio2, default_set_path, load_structures
from coreloss.structures.generate import QUARTZ_PROTOTYPE, ab2_prototypes, generate_sio2, prescale

RUTILE = "A2B_tP6_136_f_a"


def test_prototypes_substituted_and_prescaled():
    protos = {label: sub for label, _, sub in ab2_prototypes(max_atoms=36)}
    assert RUTILE in protos and QUARTZ_PROTOTYPE in protos
    assert "A2B_mC144_9_24a_12a" not in protos  # low tridymite, 72 atoms
    for sub in protos.values():
        assert sub.composition.reduced_formula == "SiO2" and len(sub) <= 36
    for label in (RUTILE, "AB2_cF12_225_a_c"):  # TiO2 (shared O-O edge limits), CaF2 (Si-O limits)
        s = prescale(protos[label])
        c, p, _, d = s.get_neighbor_list(3.0)
        sym = np.array([x.symbol for x in s.species])
        sio, oo = d[sym[c] != sym[p]].min(), d[(sym[c] == "O") & (sym[p] == "O")].min()
        assert sio >= 1.62 - 1e-6 and oo >= 2.3 - 1e-6
        assert min(sio - 1.62, oo - 2.3) == pytest.approx(0.0, abs=1e-6)  # one limit is active


@pytest.mark.slow
def test_tiny_chgnet_relaxation():
    dropped = []
    recs = generate_sio2(labels=[RUTILE], workers=1, steps=40, progress=False, dropped=dropped)
    assert dropped == []
    by_proto = {r.meta["prototype"]: r for r in recs}
    assert set(by_proto) == {RUTILE, QUARTZ_PROTOTYPE}
    assert by_proto[QUARTZ_PROTOTYPE].meta["e_above_quartz"] == 0.0
    stish = by_proto[RUTILE]
    assert stish.source == "generated-chgnet" and "CHGNet" in stish.citation
    assert stish.meta["relax_steps"] < 40 and np.isfinite(stish.meta["chgnet_energy_per_atom"])
    assert 0.0 < stish.meta["e_above_quartz"] < 0.5  # stishovite is above quartz
    assert check_sio2(stish.structure) == [] and stish.meta["spacegroup_number"] == 136


def test_shipped_default_set():
    path = default_set_path()
    if not path.is_file():
        pytest.skip(f"embedded default set not built yet ({path})")
    recs = load_structures(path)
    ids = [r.id for r in recs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and len(recs) > 150
    sources = {r.source for r in recs}
    assert {"zeose", "aflow", "pyxtal", "generated-chgnet"} <= sources
    assert all(len(r.structure) <= 150 and r.citation for r in recs)
    gen = [r for r in recs if r.source == "generated-chgnet"]
    assert all("e_above_quartz" in r.meta for r in gen)
