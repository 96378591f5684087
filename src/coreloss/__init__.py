"""coreloss: data-driven analysis of O K-edge core-loss spectra (ELNES / XANES).

Data flow: structures -> O sites + geometric labels -> engine (spectrum + electronic labels)
-> dataset -> inverse / forward models -> measured spectra and spectrum images -> property maps.
"""

__version__ = "0.1.0"
