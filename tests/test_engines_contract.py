"""Every registered engine follows the contract of coreloss.engines.base.Engine (fast: no SCF)."""

import pickle

import numpy as np
import pytest
from pymatgen.io.ase import AseAtomsAdaptor

from coreloss.engines import available_engines, engine_class, get_engine
from coreloss.engines.base import Engine
from coreloss.errors import CorelossError
from coreloss.labels import ELECTRONIC_LABELS
from coreloss.structures.reference import alpha_quartz

BUILTIN = ("xtb", "gpaw", "gpaw-lcao")


def _engine(name):
    try:
        return get_engine(name)
    except CorelossError as exc:
        if "not usable here" in str(exc) or "needs" in str(exc):
            pytest.skip(f"{name}: {exc}")
        raise


def test_builtins_registered():
    assert set(BUILTIN) <= set(available_engines())


@pytest.mark.parametrize("name", BUILTIN)
def test_engine_contract(name):
    eng = _engine(name)
    cls = engine_class(name)
    assert isinstance(eng, Engine) and type(eng) is cls and eng.name == name
    # default_parameters: every parameter; params (provenance) holds known parameters only
    assert cls.default_parameters and set(eng.params) <= set(cls.default_parameters)
    assert {"min_image_distance", "gaussian_fwhm", "lorentzian_fwhm"} <= set(eng.params)
    assert eng.provenance()["parameters"] == eng.params and eng.provenance()["engine"] == name
    assert tuple(eng.implemented_labels) == ELECTRONIC_LABELS
    # unknown names and wrong types: one CorelossError, for every engine
    with pytest.raises(CorelossError, match=f"unknown {name} engine parameter.*no_such_param"):
        get_engine(name, no_such_param=1)
    with pytest.raises(CorelossError, match="no_such_param"):
        cls(no_such_param=1)
    with pytest.raises(CorelossError, match="keywords"):
        cls(8.0)
    with pytest.raises(CorelossError):
        get_engine(name, min_image_distance="wide")
    # the cost hook: positive, grows with atoms and with sites
    assert 0 < eng.cost(100, 1) < eng.cost(100, 3) < eng.cost(200, 3)
    assert eng.sites_per_task is None or eng.sites_per_task >= 1
    # the one input rule: ASE Atoms accepted, a non-O index is one CorelossError before any SCF
    quartz = alpha_quartz()
    with pytest.raises(CorelossError, match="site 0 is not an O atom"):
        eng.compute_sites(quartz, [0])
    st, sites = eng.check_sites(AseAtomsAdaptor.get_atoms(quartz), [np.int64(4)])
    assert st == quartz and sites == [4] and type(sites[0]) is int
    assert eng.compute_sites(quartz, []) == []
    with pytest.raises(CorelossError, match="expected a pymatgen Structure"):
        eng.check_sites("quartz.cif", [4])
    # pickles (Dask workers) with the same parameters
    assert pickle.loads(pickle.dumps(eng)).params == eng.params


def test_cost_numbers_kept():
    """The cost models documented in docs/dataset.md and docs/engines.md."""
    assert _engine("xtb").cost(100, 1) == pytest.approx(2.0)
    assert _engine("xtb").cost(200, 0) == pytest.approx(2 ** 1.7)
    lcao = _engine("gpaw-lcao")
    assert lcao.cost(100, 2) == pytest.approx(1.0 + 2 * 2.0) and lcao.sites_per_task == 6  # hch + paired XCH
    assert get_engine("gpaw-lcao", xch_spinpol=True).cost(100, 1) == pytest.approx(1.0 + 3.0)
    assert get_engine("gpaw-lcao", scheme="xch").cost(100, 1) == pytest.approx(1.0 + 2.3)


def test_registry_errors():
    with pytest.raises(CorelossError, match="unknown engine"):
        get_engine("nope")
    with pytest.raises(CorelossError, match="cannot import"):
        get_engine("coreloss.engines.base:Nope")
    with pytest.raises(CorelossError, match="not a coreloss Engine"):
        get_engine("coreloss.engines.base:SiteResult")
