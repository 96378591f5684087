"""Shared test fixtures."""

import pytest


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    """Point CORELOSS_CACHE_DIR (GPAW core-hole setups, bases) at a per-module folder, not the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CORELOSS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def coarse_eggbox_reference():
    """The gpaw-lcao egg-box reference at h 0.2 instead of 0.1 Å: a constant offset of the
    excitation energy, ~20 s less per module (the isolated atom's difference is flat below 0.2)."""
    from coreloss.engines import _eggbox

    mp = pytest.MonkeyPatch()
    mp.setattr(_eggbox, "CONVERGED_H", 0.2)
    yield
    mp.undo()
