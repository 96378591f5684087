"""On-disk format of a coreloss dataset (HDF5) and its crash-safe part files.

A dataset lives in one HDF5 file (format ``coreloss-dataset/1``, layout in ``docs/dataset.md``).
While a build runs, every finished structure is first written as one part file
``<out>.parts/NNNNNN.npz`` (temp file + ``os.replace``: it either exists completely or not at
all), and the parts are periodically *consolidated*: the HDF5 file plus all parts are merged
into a temp file (:func:`coreloss.fileio.atomic_write`) that atomically replaces ``<out>``; only then are the merged parts deleted.
A ``kill -9`` at any moment therefore loses at most the structures still being computed and
never duplicates a site: rows are keyed by ``(structure_id, site_index)``.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from coreloss.errors import CorelossError
from coreloss.fileio import atomic_write, atomic_write_bytes, stale_temp_files
from coreloss.labels import LABEL_NAMES, LABEL_UNITS
from coreloss.spectra import EnergyGrid

FORMAT = "coreloss-dataset/1"
PARTS_SUFFIX = ".parts"
_STR = h5py.string_dtype()
_VLEN_F32 = h5py.vlen_dtype(np.float32)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def parts_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + PARTS_SUFFIX)


# ----------------------------------------------------------------------------- in-memory state
@dataclass
class Table:
    """Merged build state: successful site rows, failures and structure records, keyed and ordered.

    A row is a dict with ``structure_id, site_index, multiplicity, onset, y (6,), x (n_grid,),
    raw_start, raw_step, raw (float32), info (JSON-able dict)``; a failure is
    ``{structure_id, site_index, reason}`` (``site_index`` -1: the whole structure failed).
    """

    rows: dict = field(default_factory=dict)          # (sid, idx) -> row
    failures: dict = field(default_factory=dict)      # (sid, idx) -> failure dict
    structures: dict = field(default_factory=dict)    # sid -> StructureRecord dict

    def add(self, result: dict) -> None:
        """Merge one structure result (later results win; a success clears a failure)."""
        sid = result["structure_id"]
        self.structures[sid] = result["record"]
        for row in result["sites"]:
            key = (sid, int(row["site_index"]))
            self.failures.pop(key, None)
            self.failures.pop((sid, -1), None)
            self.rows[key] = row
        for fail in result["failures"]:
            key = (sid, int(fail["site_index"]))
            if key not in self.rows:
                self.failures[key] = dict(fail)

    def failed_sites(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for sid, idx in self.failures:
            out.setdefault(sid, []).append(idx)
        return out


# ----------------------------------------------------------------------------- part files
def write_part(pdir: Path, result: dict) -> Path:
    """Write one structure result as the next numbered part file (atomic); return its path."""
    existing = [int(p.stem) for p in pdir.glob("[0-9]*.npz") if p.stem.isdigit()]
    path = pdir / f"{max(existing, default=0) + 1:06d}.npz"
    sites = result["sites"]
    meta = {k: v for k, v in result.items() if k != "sites"}
    meta["sites"] = [{**{k: v for k, v in r.items() if k not in ("x", "raw")},
                      "y": [float(v) for v in r["y"]]} for r in sites]
    arrays = {"meta": np.array(json.dumps(meta))}
    for j, r in enumerate(sites):
        arrays[f"x{j}"] = np.asarray(r["x"], float)
        arrays[f"raw{j}"] = np.asarray(r["raw"], np.float32)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_part(path: Path) -> dict:
    """One structure result from a part file; CorelossError if it is truncated or corrupt."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            for j, r in enumerate(meta["sites"]):
                r["x"] = np.asarray(npz[f"x{j}"])
                r["y"] = np.asarray(r["y"], float)
                r["raw"] = np.asarray(npz[f"raw{j}"])
            meta["structure_id"], meta["record"], meta["failures"]  # noqa: B018 (required keys)
    except Exception as exc:  # BadZipFile, EOFError, zlib.error, KeyError, ValueError, ...
        raise CorelossError(f"unreadable part file {path}: {type(exc).__name__}: {exc}") from None
    return meta


def set_aside(path: Path) -> Path:
    """Rename an unreadable part file to ``<name>.bad`` (kept for inspection, never read again)."""
    bad = path.with_name(path.name + ".bad")
    k = 1
    while bad.exists():
        bad, k = path.with_name(f"{path.name}.bad{k}"), k + 1
    os.replace(path, bad)
    return bad


def list_parts(pdir: Path) -> list[Path]:
    return sorted(p for p in pdir.glob("[0-9]*.npz") if p.stem.isdigit())


# ----------------------------------------------------------------------------- HDF5 file
def is_dataset_file(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as fh:
            return fh.attrs.get("format") == FORMAT
    except OSError:
        return False


def read_header(path: Path) -> dict:
    """File-level provenance of a dataset file (CorelossError if not a coreloss dataset)."""
    if not is_dataset_file(path):
        raise CorelossError(f"{path} exists and is not a coreloss dataset; choose another --out")
    with h5py.File(path, "r") as fh:
        return json.loads(fh.attrs["provenance"])


def read_table(path: Path) -> Table:
    """Everything stored in a dataset file, as a mergeable :class:`Table`."""
    t = Table()
    with h5py.File(path, "r") as fh:
        for sid, rec in zip(fh["structures/ids"].asstr()[:], fh["structures/records"].asstr()[:]):
            t.structures[sid] = json.loads(rec)
        sids = fh["structure_ids"].asstr()[:]
        X, Y = fh["X"][:], fh["y"][:]
        site, mult, onset = fh["site_index"][:], fh["multiplicity"][:], fh["onset"][:]
        info = fh["site_provenance"].asstr()[:]
        raw, r0, rs = fh["raw/intensity"][:], fh["raw/energy_start"][:], fh["raw/energy_step"][:]
        for i, sid in enumerate(sids):
            t.rows[(sid, int(site[i]))] = {
                "structure_id": sid, "site_index": int(site[i]), "multiplicity": int(mult[i]),
                "onset": float(onset[i]), "y": Y[i], "x": X[i], "raw_start": float(r0[i]),
                "raw_step": float(rs[i]), "raw": np.asarray(raw[i], np.float32),
                "info": json.loads(info[i])}
        f = fh["failures"]
        for sid, idx, reason in zip(f["structure_id"].asstr()[:], f["site_index"][:],
                                    f["reason"].asstr()[:]):
            t.failures[(sid, int(idx))] = {"structure_id": sid, "site_index": int(idx),
                                           "reason": reason}
    return t


def write_dataset(path: Path, table: Table, grid: EnergyGrid, provenance: dict) -> None:
    """Write ``table`` as a complete dataset file, atomically replacing ``path``."""
    rows = list(table.rows.values())
    atomic_write(path, lambda tmp: _write_h5(tmp, rows, table, grid, provenance))


def _write_h5(tmp: str, rows: list, table: Table, grid: EnergyGrid, provenance: dict) -> None:
    n, g = len(rows), grid.n
    with h5py.File(tmp, "w") as fh:
        prov = dict(provenance, n_sites=n, n_failures=len(table.failures),
                    n_structures=len(table.structures), grid=grid.to_dict(),
                    label_names=list(LABEL_NAMES), label_units=dict(LABEL_UNITS))
        fh.attrs["format"] = FORMAT
        fh.attrs["provenance"] = json.dumps(prov)
        opts = {"compression": "gzip", "shuffle": True} if n else {}
        X = np.array([r["x"] for r in rows], float).reshape(n, g)
        dx = fh.create_dataset("X", data=X, **opts)
        dx.attrs["unit"] = "1/eV (area-normalised)"
        dx.attrs["energy_axis"] = "E - onset (eV)"
        dx.attrs["grid"] = json.dumps(grid.to_dict())
        fh.create_dataset("energies", data=grid.energies).attrs["unit"] = "eV"
        dy = fh.create_dataset("y", data=np.array([r["y"] for r in rows], float).reshape(n, 6))
        dy.attrs["label_names"] = json.dumps(list(LABEL_NAMES))
        dy.attrs["label_units"] = json.dumps([LABEL_UNITS[k] for k in LABEL_NAMES])
        fh.create_dataset("structure_ids", data=[r["structure_id"] for r in rows], dtype=_STR)
        fh.create_dataset("site_index", data=np.array([r["site_index"] for r in rows], np.int64))
        fh.create_dataset("multiplicity", data=np.array([r["multiplicity"] for r in rows], np.int64))
        don = fh.create_dataset("onset", data=np.array([r["onset"] for r in rows], float))
        don.attrs["unit"] = "eV (engine's absolute energy reference)"
        fh.create_dataset("site_provenance", data=[json.dumps(r["info"]) for r in rows], dtype=_STR)
        raw = fh.create_group("raw")
        raw.attrs["description"] = "unaligned engine spectra: E = energy_start + energy_step * k (eV)"
        raw.create_dataset("energy_start", data=np.array([r["raw_start"] for r in rows], float))
        raw.create_dataset("energy_step", data=np.array([r["raw_step"] for r in rows], float))
        vl = raw.create_dataset("intensity", (n,), dtype=_VLEN_F32)
        for i, r in enumerate(rows):
            vl[i] = np.asarray(r["raw"], np.float32)
        st = fh.create_group("structures")
        st.create_dataset("ids", data=list(table.structures), dtype=_STR)
        st.create_dataset("records", data=[json.dumps(v) for v in table.structures.values()],
                          dtype=_STR)
        fails = list(table.failures.values())
        fg = fh.create_group("failures")
        fg.create_dataset("structure_id", data=[f["structure_id"] for f in fails], dtype=_STR)
        fg.create_dataset("site_index", data=np.array([f["site_index"] for f in fails], np.int64))
        fg.create_dataset("reason", data=[f["reason"] for f in fails], dtype=_STR)


def subset_dataset(src: str | Path, dst: str | Path, keep_ids=None, drop_sources=()) -> Table:
    """Write the structures of ``src`` that are kept (``keep_ids``, if given, minus any whose record
    ``source`` is in ``drop_sources``) to a new dataset file ``dst``, with the same grid and
    provenance plus a ``subset`` note. ``dst`` must not exist (never overwritten)."""
    src, dst = Path(src), Path(dst)
    if not is_dataset_file(src):
        raise CorelossError(f"{src} is not a coreloss dataset file")
    if dst.exists():  # includes dst == src
        raise CorelossError(f"{dst} exists; not overwriting it")
    if parts_dir(src).is_dir() and list_parts(parts_dir(src)):
        raise CorelossError(f"{src} has unconsolidated part files (a build is running or was killed); "
                            "finish or resume the build first")
    prov = read_header(src)
    table = read_table(src)
    keep = set(table.structures) if keep_ids is None else set(keep_ids) & set(table.structures)
    drop_sources = set(drop_sources)
    keep = {sid for sid in keep if table.structures[sid].get("source") not in drop_sources}
    if not keep:
        raise CorelossError("the subset is empty: no structure of the file is kept")
    sub = Table(rows={k: v for k, v in table.rows.items() if k[0] in keep},
                failures={k: v for k, v in table.failures.items() if k[0] in keep},
                structures={k: v for k, v in table.structures.items() if k in keep})
    grid = EnergyGrid.from_dict(prov["grid"])
    prov = {k: v for k, v in prov.items() if k not in ("n_sites", "n_failures", "n_structures")}
    prov["subset"] = {"of": src.name, "structures_kept": len(keep), "structures_in_source": len(table.structures),
                      "dropped_sources": sorted(drop_sources), "created": now()}
    write_dataset(dst, sub, grid, prov)
    return sub


def consolidate(out: Path, grid: EnergyGrid, provenance: dict) -> Table:
    """Merge ``out`` (if any) and all part files into ``out`` atomically, then drop the parts."""
    table, parts = collect(out)
    if parts or not out.exists():
        write_dataset(out, table, grid, provenance)
        for p in parts:
            p.unlink(missing_ok=True)
    return table


def collect(out: Path, set_aside_into: list | None = None) -> tuple[Table, list[Path]]:
    """Current merged state (file + parts) and the part files that went into it.

    An unreadable (e.g. truncated) part file is renamed ``<name>.bad`` and left out, so its
    structure is computed again; ``(part, renamed, reason)`` is appended to ``set_aside_into``.
    """
    table = read_table(out) if out.exists() else Table()
    parts = []
    for p in list_parts(parts_dir(out)):
        try:
            table.add(read_part(p))
        except CorelossError as exc:
            bad = set_aside(p)
            if set_aside_into is not None:
                set_aside_into.append((p, bad, str(exc)))
            continue
        parts.append(p)
    return table, parts


# ----------------------------------------------------------------------------- output checks
def _check_config(stored: dict, config: dict, where: Path) -> None:
    for key in ("engine", "parameters", "grid"):
        a, b = stored.get(key), config[key]
        if key == "grid":
            a, b = EnergyGrid.from_dict(a) if a else None, EnergyGrid.from_dict(b)
            same = a is not None and a.matches(b)
        else:
            same = a == b
        if not same:
            raise CorelossError(f"{where} was built with {key}={json.dumps(stored.get(key))}, not "
                                f"{json.dumps(config[key])}; use another --out")


def prepare_output(out: Path, config: dict) -> tuple[Path, object, dict]:
    """Validate ``out`` and its parts folder, take the writer lock; return (parts, lock, created)."""
    if out.is_dir():
        raise CorelossError(f"output {out} is a directory; give a file name like data.h5")
    pdir = parts_dir(out)
    header = {}
    if out.exists():
        header = read_header(out)
        _check_config(header, config, out)
    if pdir.exists():
        run = pdir / "run.json"
        if not pdir.is_dir() or not run.is_file():
            raise CorelossError(f"{pdir} exists and is not a coreloss build folder; choose another --out")
        header = header or json.loads(run.read_text())
        _check_config(json.loads(run.read_text()), config, pdir)
    out.parent.mkdir(parents=True, exist_ok=True)
    pdir.mkdir(exist_ok=True)
    lock = open(pdir / "lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise CorelossError(f"another build is writing {out} right now")
    created = header.get("created") or now()
    if not (pdir / "run.json").exists():
        atomic_write_bytes(pdir / "run.json", json.dumps({**config, "created": created}).encode())
    for stale in [*pdir.glob(".*.tmp"), *stale_temp_files(out), out.with_name(out.name + ".tmp")]:
        stale.unlink(missing_ok=True)
    return pdir, lock, created


# ----------------------------------------------------------------------------- reading API
@dataclass
class Dataset:
    """A loaded dataset (contract 4). Arrays are row-aligned: one row per O site.

    X: (n, n_grid) onset-aligned, area-normalised spectra (1/eV) on ``grid`` (eV, E - onset)
    y: (n, 6) labels in ``label_names`` order, units ``label_units``
    structure_ids, site_index, multiplicity: which O site of which structure (and its multiplicity)
    onset: (n,) absolute edge onset (eV, engine reference)
    structures: every structure of the dataset (pymatgen ``Structure`` by id)
    provenance: file-level provenance; ``site_provenance``: per-row dicts; ``failures``: failed sites
    """

    X: np.ndarray
    y: np.ndarray
    grid: EnergyGrid
    label_names: tuple
    label_units: tuple
    structure_ids: np.ndarray
    site_index: np.ndarray
    multiplicity: np.ndarray
    onset: np.ndarray
    structures: dict
    provenance: dict
    site_provenance: list
    failures: list
    structure_meta: dict = field(default_factory=dict)
    path: Path | None = None

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __repr__(self) -> str:
        return (f"Dataset({len(self)} sites, {len(set(self.structure_ids.tolist()))} structures, "
                f"engine={self.provenance.get('engine')!r}, grid={self.grid}, "
                f"{len(self.failures)} failures)")

    def subset(self, mask) -> "Dataset":
        """Rows selected by a boolean mask or index array (structures kept only if referenced)."""
        idx = np.arange(len(self))[np.asarray(mask)]
        sids = self.structure_ids[idx]
        keep = set(sids.tolist())
        return Dataset(self.X[idx], self.y[idx], self.grid, self.label_names, self.label_units,
                       sids, self.site_index[idx], self.multiplicity[idx], self.onset[idx],
                       {k: v for k, v in self.structures.items() if k in keep}, dict(self.provenance),
                       [self.site_provenance[i] for i in idx],
                       [f for f in self.failures if f["structure_id"] in keep],
                       {k: v for k, v in self.structure_meta.items() if k in keep}, self.path)

    def to_csv(self, path: str | Path) -> None:
        """Write one line per site: structure_id, site_index, multiplicity, onset, six labels."""
        import csv
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["structure_id", "site_index", "multiplicity", "onset_eV"]
                       + [f"{n} ({u})" for n, u in zip(self.label_names, self.label_units)])
            for i in range(len(self)):
                w.writerow([self.structure_ids[i], int(self.site_index[i]), int(self.multiplicity[i]),
                            f"{self.onset[i]:.4f}"] + [f"{v:.6g}" for v in self.y[i]])


def load_dataset(path: str | Path) -> Dataset:
    """Read a dataset file written by ``coreloss dataset build``."""
    from pymatgen.core import Structure

    path = Path(path)
    if not path.is_file():
        raise CorelossError(f"dataset not found: {path}")
    if not is_dataset_file(path):
        raise CorelossError(f"{path} is not a coreloss dataset ({FORMAT!r} HDF5 expected)")
    with h5py.File(path, "r") as fh:
        prov = json.loads(fh.attrs["provenance"])
        grid = EnergyGrid.from_dict(json.loads(fh["X"].attrs["grid"]))
        names = tuple(json.loads(fh["y"].attrs["label_names"]))
        units = tuple(json.loads(fh["y"].attrs["label_units"]))
        structures, meta = {}, {}
        for sid, rec in zip(fh["structures/ids"].asstr()[:], fh["structures/records"].asstr()[:]):
            d = json.loads(rec)
            structures[sid] = Structure.from_dict(d["structure"])
            meta[sid] = {k: v for k, v in d.items() if k != "structure"}
        f = fh["failures"]
        failures = [{"structure_id": s, "site_index": int(i), "reason": r} for s, i, r in
                    zip(f["structure_id"].asstr()[:], f["site_index"][:], f["reason"].asstr()[:])]
        return Dataset(
            X=fh["X"][:].astype(float), y=fh["y"][:].astype(float), grid=grid, label_names=names,
            label_units=units, structure_ids=np.asarray(fh["structure_ids"].asstr()[:], dtype=str),
            site_index=fh["site_index"][:].astype(int), multiplicity=fh["multiplicity"][:].astype(int),
            onset=fh["onset"][:].astype(float), structures=structures, provenance=prov,
            site_provenance=[json.loads(s) for s in fh["site_provenance"].asstr()[:]],
            failures=failures, structure_meta=meta, path=path)
