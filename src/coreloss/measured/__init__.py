"""Measured spectra (EELS / XAS files, line scans, spectrum images) -> O-site property maps.

Modules: :mod:`~coreloss.measured.readers` (files -> :class:`MeasuredSpectra`),
:mod:`~coreloss.measured.preprocess` (background, deconvolution, crop, resolution, onset, alignment),
:mod:`~coreloss.measured.predict` (model inference + tables), :mod:`~coreloss.measured.maps`
(maps / profiles as PNG and .hspy), :mod:`~coreloss.measured.synthetic` (test spectrum images).
"""

from coreloss.measured.predict import MeasuredPrediction, load_model, predict_measured
from coreloss.measured.preprocess import PreprocessConfig, preprocess_block
from coreloss.measured.readers import MeasuredSpectra, NavAxis, read_measured

__all__ = ["MeasuredPrediction", "MeasuredSpectra", "NavAxis", "PreprocessConfig", "load_model",
           "predict_measured", "preprocess_block", "read_measured"]
