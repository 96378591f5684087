"""scripts/apply_eggbox_correction.py: a gpaw-lcao dataset built without the egg-box correction is
brought onto the corrected scale exactly as the engine would have computed it, and resumes."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gpaw", reason="GPAW is not installed (pip install gpaw gpaw-data)")

from coreloss.dataset import build_dataset, load_dataset  # noqa: E402
from coreloss.dataset_store import read_header  # noqa: E402
from coreloss.structures import StructureRecord, save_structures  # noqa: E402

from test_engine_gpaw_lcao import FAST, cristobalite, rutile_type  # noqa: E402

pytestmark = pytest.mark.usefixtures("private_cache", "coarse_eggbox_reference")
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "apply_eggbox_correction.py"


def _script():
    spec = importlib.util.spec_from_file_location("apply_eggbox_correction", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_old_dataset_corrected_and_resumable(tmp_path, capsys):
    from coreloss.engines import get_engine

    sset = tmp_path / "set.json"
    save_structures([StructureRecord("crist", cristobalite(), "generated", "test"),
                     StructureRecord("rutile", rutile_type(), "generated", "test")], sset)
    out = tmp_path / "old.h5"
    old = {**FAST, "eggbox_correction": False}
    assert build_dataset(out, sset, engine="gpaw-lcao", engine_params=old, workers=0).new_sites == 2
    before = load_dataset(out)
    assert _script().main([str(out)]) == 0
    after = load_dataset(out)
    assert read_header(out)["parameters"]["eggbox_correction"] is True
    eng = get_engine("gpaw-lcao", **FAST)
    for i, sid in enumerate(after.structure_ids):
        s = cristobalite() if sid == "crist" else rutile_type()
        corr, offset = eng.eggbox(s, int(after.site_index[i]))
        j = list(before.structure_ids).index(sid)
        assert after.y[i, 5] == pytest.approx(before.y[j, 5] - corr, abs=1e-6)
        assert after.y[i, :5] == pytest.approx(before.y[j, :5])
        np.testing.assert_allclose(after.X[i], before.X[j])  # onset-aligned: unchanged
    # the corrected file resumes with the current engine: nothing left to compute
    assert build_dataset(out, sset, engine="gpaw-lcao", engine_params=FAST, workers=0).new_sites == 0
    assert _script().main([str(out)]) == 0  # a second run changes nothing
    assert load_dataset(out).y[:, 5] == pytest.approx(after.y[:, 5])
    bad = tmp_path / "not.h5"
    bad.write_text("x")
    capsys.readouterr()
    assert _script().main([str(bad)]) == 1
    assert capsys.readouterr().err.startswith("error: ")
