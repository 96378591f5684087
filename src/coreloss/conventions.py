"""The spectral conventions of a data set: one small frozen record, stored once.

:class:`SpectralConventions` says how a data set's spectra were made comparable: the energy grid
(E - onset, eV), the onset rule (:func:`coreloss.spectra.onset_energy` parameters), the
normalisation and the broadening the engine applied (Gaussian and Lorentzian FWHM, eV). The
dataset build stores it in the provenance (``"conventions"``), the models carry it
(``metadata["conventions"]``), and the measured pipeline reads it from the model
(:meth:`SpectralConventions.of_model`) instead of searching metadata for a key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from coreloss.spectra import (DEFAULT_GRID, ONSET_FRACTION, ONSET_SMOOTH_EV, ONSET_SUSTAIN_EV,
                              EnergyGrid)


@dataclass(frozen=True)
class SpectralConventions:
    """Grid, onset rule, normalisation and broadening of a set of spectra (energies in eV)."""

    grid: EnergyGrid = DEFAULT_GRID
    onset_fraction: float = ONSET_FRACTION
    onset_smooth_ev: float = ONSET_SMOOTH_EV
    onset_sustain_ev: float = ONSET_SUSTAIN_EV
    normalisation: str = "unit trapezoidal area on the grid (1/eV)"
    gaussian_fwhm: float | None = None  # broadening the engine applied (None: not recorded)
    lorentzian_fwhm: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["grid"] = self.grid.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SpectralConventions":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "grid": EnergyGrid.from_dict(d.get("grid") or DEFAULT_GRID.to_dict())})

    @classmethod
    def from_engine(cls, params: dict, grid: EnergyGrid = DEFAULT_GRID) -> "SpectralConventions":
        """Conventions of spectra computed by an engine with parameters ``params`` on ``grid``."""
        return cls(grid=grid, gaussian_fwhm=_number(params.get("gaussian_fwhm")),
                   lorentzian_fwhm=_number(params.get("lorentzian_fwhm")))

    @classmethod
    def from_provenance(cls, prov: dict | None) -> "SpectralConventions":
        """From a dataset's provenance (its ``"conventions"``, or for older files its engine
        ``"parameters"`` and ``"grid"``); a training provenance ``{"dataset_provenance": ...}`` too."""
        prov = prov or {}
        if isinstance(prov.get("dataset_provenance"), dict):
            prov = prov["dataset_provenance"]
        if isinstance(prov.get("conventions"), dict):
            return cls.from_dict(prov["conventions"])
        grid = EnergyGrid.from_dict(prov["grid"]) if isinstance(prov.get("grid"), dict) else DEFAULT_GRID
        return cls.from_engine(prov.get("parameters") or {}, grid)

    @classmethod
    def of_model(cls, model) -> "SpectralConventions":
        """The conventions a trained model carries (older model files: from their training provenance
        and the ``training_fwhm`` parameter they were trained with)."""
        md = getattr(model, "metadata", None) or {}
        if isinstance(md.get("conventions"), dict):
            return cls.from_dict(md["conventions"])
        conv = cls.from_provenance(md.get("training_provenance"))
        fwhm = _number((md.get("params") or {}).get("training_fwhm"))
        grid = getattr(model, "grid", conv.grid)
        return cls(**{**asdict(conv), "grid": grid,
                      "gaussian_fwhm": conv.gaussian_fwhm if conv.gaussian_fwhm is not None else fwhm})


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
