"""Shared test fixtures."""

import pytest


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    """Point CORELOSS_CACHE_DIR (GPAW core-hole setups, bases) at a per-module folder, not the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CORELOSS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()
