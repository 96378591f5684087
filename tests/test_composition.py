"""Composition check of the OOD flag: major edges of other elements in a measured spectrum."""

from pathlib import Path

import numpy as np
import pytest

from coreloss.measured import predict_measured, read_measured
from coreloss.measured.composition import edge_jump, foreign_edges, major_edges
from coreloss.measured.readers import MeasuredSpectra
from coreloss.measured.synthetic import synthetic_spectrum_image
from coreloss.models.synthetic import synthetic_dataset

EXP = Path(__file__).resolve().parents[2] / "shared" / "data" / "experimental"


@pytest.fixture(scope="module")
def wide_image():
    """An 8x8 O K image on 420-820 eV (power-law background, SNR 40): no other element's edge."""
    X, y, _ = synthetic_dataset(8, 8, seed=2)
    img, _ = synthetic_spectrum_image(X, y, shape=(8, 8), snr=40.0, energy_axis=(420.0, 0.25, 1600), seed=1)
    return img


def _with_mn_l3(img, rows):
    """The image with a Mn L3-like white line and step (640 eV, a third of the background) in ``rows``."""
    e, d = img.energy, img.flat().copy()
    bg = d[:, (e > 600) & (e < 620)].mean(axis=1, keepdims=True)
    step = 0.35 * bg * ((e >= 640) * (1 + 2.0 * np.exp(-0.5 * ((e - 642.0) / 1.5) ** 2)))
    d[rows] += step[rows]
    return MeasuredSpectra(e, d.reshape(img.data.shape), list(img.nav_axes), dict(img.metadata), "mn-l3 test")


def test_major_edges_come_from_exspy():
    edges = dict(major_edges())
    assert edges["Mn L3"] == pytest.approx(640.0) and edges["Ti L3"] == pytest.approx(456.0)
    assert not any(name.split()[0] in ("O", "Si") for name in edges)


def test_no_foreign_edge_in_an_o_k_image_and_one_where_added(wide_image):
    assert (foreign_edges(wide_image.energy, wide_image.flat()) == "").all()  # O K itself is excluded
    rows = np.arange(0, 64, 3)
    found = foreign_edges(wide_image.energy, _with_mn_l3(wide_image, rows).flat())
    assert all("Mn L3" in found[i] for i in rows)
    assert (found[np.setdiff1d(np.arange(64), rows)] == "").all()
    sig, rel = edge_jump(wide_image.energy, _with_mn_l3(wide_image, rows).flat(), 640.0)
    assert sig[rows].min() > 10 and rel[rows].min() > 0.1 and np.abs(rel[1]) < 0.05


def test_predict_measured_flags_pixels_with_another_edge(wide_image):
    from coreloss.models.inverse import InverseModel
    X, y, g = synthetic_dataset(12, 6, seed=3)
    model = InverseModel(members=1, epochs=3, hidden=(16,)).fit(X, y, groups=g)
    rows = np.arange(0, 64, 4)
    res = predict_measured(_with_mn_l3(wide_image, rows), model)
    assert res.ood[rows].all() and all("Mn L3" in res.foreign[i] for i in rows)
    assert (res.foreign[np.setdiff1d(np.arange(64), rows)] == "").all()
    assert res.provenance["composition_check"]["n_with_foreign_edges"] == len(rows)


def test_measured_manganite_and_titanate_edges_found():
    if not EXP.exists():
        pytest.skip(f"shared experimental data not present: {EXP}")
    lsmo = read_measured(EXP / "LSMO_linescan.hspy")
    assert all("Mn L3" in f for f in foreign_edges(lsmo.energy, lsmo.flat()))
    sto = read_measured(EXP / "LSMO_STO_linescan.hspy")
    assert any("Ti L3" in f for f in foreign_edges(sto.energy, sto.flat()))
