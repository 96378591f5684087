"""Readers of other codes' output into coreloss objects (not engines: they compute nothing).

* :mod:`coreloss.readers.castep`: CASTEP ``.castep`` populations and OptaDOS core-edge spectra
  -> :class:`coreloss.engines.base.SiteResult`.
"""
