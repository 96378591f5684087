"""Readers for the installable SiO2 structure sources; each returns raw :class:`StructureRecord` s.

Readers do not check or deduplicate (see :mod:`.checks`, :mod:`.dedup`); they canonicalise cells
(primitive, Niggli-reduced) and append ``(id, source, reason)`` to ``dropped`` for what they skip.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
import warnings
from pathlib import Path

from pymatgen.core import Structure

from coreloss.errors import CorelossError
from coreloss.structures.checks import canonical_cell
from coreloss.structures.record import StructureRecord

CITE_IZA = ("IZA Database of Zeolite Structures: Ch. Baerlocher & L. B. McCusker, "
            "http://www.iza-structure.org/databases/; read from the zeose package (PyPI, MIT)")
CITE_AMCSD = "AMCSD: R. T. Downs & M. Hall-Wallace, Am. Mineral. 88, 247 (2003)"
CITE_AFLOW = ("AFLOW prototypes: M. J. Mehl et al., Comput. Mater. Sci. 136, S1 (2017), "
              "via pymatgen.analysis.prototypes")
CITE_PYXTAL = "PyXtal: S. Fredericks et al., Comput. Phys. Commun. 261, 107810 (2021)"
CITE_MP = "Materials Project: A. Jain et al., APL Mater. 1, 011002 (2013), via mp-api"

STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar")
TOO_LARGE = "too large:"  # prefix of size-limit drop reasons
PYXTAL_SIO2 = ("lt_quartz", "ht_quartz", "lt_cristobalite", "ht_cristobalite")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_")


def _package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CorelossError(f"package {package!r} is not installed (pip install {package})")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    if not path.is_file():
        raise CorelossError(f"{path} not found in the installed {package!r} package")
    return path


def zeose_db_path() -> Path:
    """Path of ``zse/collections/frameworks.db`` of PyPI ``zeose`` (``zse`` is never imported)."""
    try:
        return _package_file("zse", "collections", "frameworks.db")
    except CorelossError as exc:
        raise CorelossError(f"{exc}; install it with: pip install --no-deps zeose") from None


def bridge_oxygens(structure: Structure, max_tt: float = 3.6) -> Structure:
    """Decorate every T atom as Si and put a bridging O at the midpoint of each T-T pair < ``max_tt`` A.

    For frameworks stored as T atoms only (existing O atoms are kept as they are).
    """
    t_idx = [i for i, sp in enumerate(structure.species) if sp.symbol != "O"]
    out = Structure(structure.lattice, ["Si" if sp.symbol != "O" else "O" for sp in structure.species],
                    structure.frac_coords)
    if any(sp.symbol == "O" for sp in structure.species):
        return out
    tonly = Structure(structure.lattice, ["Si"] * len(t_idx), structure.frac_coords[t_idx])
    c, p, images, _ = tonly.get_neighbor_list(max_tt)
    for i, j, img in zip(c, p, images):
        if i < j or (i == j and tuple(img) > (0, 0, 0)):
            mid = (tonly.frac_coords[i] + tonly.frac_coords[j] + img) / 2.0
            out.append("O", mid % 1.0)
    return out


def read_zeose(max_atoms: int = 150, dropped: list | None = None, db_path: str | Path | None = None,
               progress: bool = False, codes: list[str] | None = None) -> list[StructureRecord]:
    """IZA frameworks of the zeose ASE database as SiO2 records ``zeo-<CODE>`` (primitive <= max_atoms).

    codes: only these framework codes (e.g. ``["SOD"]``); all by default.
    """
    import ase.db
    from pymatgen.io.ase import AseAtomsAdaptor
    from rich.progress import track

    db_path = Path(db_path) if db_path else zeose_db_path()
    records = []
    with ase.db.connect(str(db_path)) as db:
        rows = [r for r in db.select() if codes is None or r.get("fw") in codes]
    rows = sorted(rows, key=lambda r: r.get("fw", str(r.id)))
    for row in track(rows, description="IZA frameworks (zeose)", disable=not progress):
        code = row.get("fw", f"row{row.id}")
        rid = f"zeo-{_slug(code)}"
        n_o = row.count_atoms().get("O", 0)
        n_est = row.natoms if n_o else 3 * row.natoms  # T-only rows get 2 O per T
        # IZA primitive cells are at least 1/4 of the conventional cell: skip hopeless ones early
        if n_est > 4 * max_atoms:
            _drop(dropped, rid, "zeose", f"{TOO_LARGE} {n_est} atoms in the cell > 4 x {max_atoms}")
            continue
        structure = bridge_oxygens(AseAtomsAdaptor.get_structure(row.toatoms()))
        prim, meta = canonical_cell(structure)
        if len(prim) > max_atoms:
            _drop(dropped, rid, "zeose", f"{TOO_LARGE} {len(prim)} atoms > {max_atoms}")
            continue
        records.append(StructureRecord(rid, prim, "zeose", CITE_IZA,
                                       {"framework": code, "n_atoms": len(prim), **meta}))
    return records


def aflow_prototypes() -> list[dict]:
    """All entries of pymatgen's ``aflow_prototypes.json.gz`` as dicts (snl, tags)."""
    path = _package_file("pymatgen", "analysis", "prototypes", "aflow_prototypes.json.gz")
    return json.loads(gzip.decompress(path.read_bytes()))


def _aflow_structure(entry: dict) -> Structure:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_dict(entry["snl"])


def read_aflow(dropped: list | None = None, max_atoms: int = 150) -> list[StructureRecord]:
    """SiO2 prototypes of the AFLOW library (quartz, cristobalite, tridymite, keatite, ...).

    The AFLOW coesite entry is dropped: its O positions are broken (Si-O bonds up to 2.5 A).
    """
    records = []
    for entry in aflow_prototypes():
        s = _aflow_structure(entry)
        if s.composition.reduced_formula != "SiO2":
            continue
        tags = entry["tags"]
        rid = f"aflow-{_slug(tags['aflow'])}"
        if "coesite" in str(tags.get("mineral", "")).lower():
            _drop(dropped, rid, "aflow", "AFLOW coesite entry is broken (distorted Si-O bonds)")
            continue
        prim, meta = canonical_cell(s)
        if len(prim) > max_atoms:
            _drop(dropped, rid, "aflow", f"{TOO_LARGE} {len(prim)} atoms > {max_atoms}")
            continue
        records.append(StructureRecord(rid, prim, "aflow", CITE_AFLOW,
                                       {"prototype": tags["aflow"], "mineral": tags.get("mineral", ""),
                                        "pearson": tags.get("pearson", ""), **meta}))
    return records


def read_structure_file(path: str | Path) -> Structure:
    """One structure from a CIF or POSCAR file (CorelossError if it cannot be read)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path.suffix.lower() == ".cif":
                from pymatgen.io.cif import CifParser
                structures = CifParser(str(path)).parse_structures(primitive=False)
                if not structures:
                    raise ValueError("no structure in CIF")
                return structures[0]
            return Structure.from_file(str(path))
    except CorelossError:
        raise
    except Exception as exc:  # pymatgen raises many types on bad input
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorelossError(f"cannot read a structure from {path}: {msg}") from None


def _is_structure_name(path: Path) -> bool:
    name = path.name.lower()
    return path.suffix.lower() in STRUCTURE_SUFFIXES or name.startswith(("poscar", "contcar"))


def read_pyxtal(dropped: list | None = None) -> list[StructureRecord]:
    """Quartz and cristobalite (low/high) from pyxtal's ``database/cifs``."""
    records = []
    for name in PYXTAL_SIO2:
        rid = f"pyxtal-{name}"
        try:
            s = read_structure_file(_package_file("pyxtal", "database", "cifs", f"{name}.cif"))
        except CorelossError as exc:
            _drop(dropped, rid, "pyxtal", str(exc))
            continue
        prim, meta = canonical_cell(s)
        records.append(StructureRecord(rid, prim, "pyxtal", CITE_PYXTAL, {"file": f"{name}.cif", **meta}))
    return records


def find_minerals_dir(explicit: str | Path | None = None) -> Path | None:
    """The AMCSD minerals folder: ``explicit``, else ``../shared/data/structures/minerals`` relative to
    the working directory or to the repository (``None`` if absent; CorelossError if ``explicit`` is)."""
    if explicit is not None:
        p = Path(explicit)
        if not p.is_dir():
            raise CorelossError(f"minerals folder not found: {p}")
        return p
    rel = Path("shared", "data", "structures", "minerals")
    for base in (Path.cwd(), Path.cwd().parent, Path(__file__).resolve().parents[3].parent):
        if (base / rel).is_dir():
            return base / rel
    return None


def read_minerals(directory: str | Path, dropped: list | None = None) -> list[StructureRecord]:
    """The SiO2 entries (reduced formula SiO2) of a folder of AMCSD CIFs, ids ``amcsd-<name>``."""
    records = []
    for path in sorted(Path(directory).glob("*.cif")):
        try:
            s = read_structure_file(path)
        except CorelossError as exc:
            _drop(dropped, f"amcsd-{_slug(path.stem)}", "amcsd", str(exc))
            continue
        if s.composition.reduced_formula != "SiO2":
            continue
        prim, meta = canonical_cell(s)
        records.append(StructureRecord(f"amcsd-{_slug(path.stem)}", prim, "amcsd", CITE_AMCSD,
                                       {"mineral": path.stem, "file": path.name, **meta}))
    return records


def read_folder(directory: str | Path, dropped: list | None = None) -> list[StructureRecord]:
    """Every CIF/POSCAR of a folder (or one file) as records ``file-<stem>``, source ``folder``."""
    directory = Path(directory)
    if not directory.exists():
        raise CorelossError(f"folder not found: {directory}")
    files = [directory] if directory.is_file() else sorted(
        p for p in directory.iterdir() if p.is_file() and _is_structure_name(p))
    if not files:
        raise CorelossError(f"no CIF/POSCAR files in {directory}")
    records = []
    for path in files:
        rid = f"file-{_slug(path.stem if path.suffix else path.name)}"
        try:
            s = read_structure_file(path)
            if not s.is_ordered:  # canonical_cell needs one species per site
                raise CorelossError(f"{path.name}: disordered (partial occupancies)")
        except CorelossError as exc:
            if directory.is_file():
                raise
            _drop(dropped, rid, "folder", str(exc))
            continue
        prim, meta = canonical_cell(s)
        records.append(StructureRecord(rid, prim, "folder", f"user file {path.name}",
                                       {"file": str(path.resolve()), **meta}))
    if not records:
        raise CorelossError(f"no readable structure in {directory}")
    return records


def check_mp_available(api_key: str | None = None) -> str:
    """The Materials Project API key; CorelossError without a key or without mp-api installed."""
    api_key = api_key or os.environ.get("MP_API_KEY")
    if not api_key:
        raise CorelossError("--mp needs a Materials Project API key in the MP_API_KEY environment variable")
    if importlib.util.find_spec("mp_api") is None:
        raise CorelossError("--mp needs the mp-api package: pip install 'coreloss[mp]'")
    return api_key


def read_materials_project(max_atoms: int = 150, api_key: str | None = None,
                           dropped: list | None = None) -> list[StructureRecord]:
    """All SiO2 entries of the Materials Project with <= ``max_atoms`` sites (needs mp-api, MP_API_KEY)."""
    api_key = check_mp_available(api_key)
    from mp_api.client import MPRester

    try:
        with MPRester(api_key) as mpr:
            docs = mpr.materials.summary.search(formula="SiO2", num_sites=(1, max_atoms),
                                                fields=["material_id", "structure"])
    except Exception as exc:  # network, auth, API errors
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorelossError(f"Materials Project query failed: {msg}") from None
    records = []
    for doc in sorted(docs, key=lambda d: str(d.material_id)):
        prim, meta = canonical_cell(doc.structure)
        mid = str(doc.material_id)
        if len(prim) > max_atoms:
            _drop(dropped, mid, "materials-project", f"{TOO_LARGE} {len(prim)} atoms > {max_atoms}")
            continue
        records.append(StructureRecord(mid, prim, "materials-project", CITE_MP,
                                       {"material_id": mid, **meta}))
    return records


def _drop(dropped: list | None, rid: str, source: str, reason: str) -> None:
    if dropped is not None:
        dropped.append((rid, source, reason))


__all__ = ["read_zeose", "read_aflow", "read_pyxtal", "read_minerals", "read_folder",
           "read_materials_project", "bridge_oxygens", "zeose_db_path", "aflow_prototypes",
           "find_minerals_dir", "read_structure_file"]
