"""SiO2 structure sets: sources, sanity checks, deduplication, generation, the embedded default set.

>>> from coreloss.structures import default_set_path, load_structures
>>> records = load_structures(default_set_path())   # the shipped default SiO2 set
"""

from coreloss.structures.build import BuildReport, build_structure_set, default_set_path, shipped_generated
from coreloss.structures.checks import canonical_cell, check_oxide, check_sio2
from coreloss.structures.dedup import deduplicate
from coreloss.structures.record import StructureRecord, load_structures, save_structures

__all__ = ["StructureRecord", "save_structures", "load_structures", "default_set_path",
           "build_structure_set", "BuildReport", "shipped_generated", "check_sio2", "check_oxide",
           "canonical_cell", "deduplicate"]
