"""Realistic, diverse SiO2 structures made with CHGNet: the plan (what, in which order) and a resumable runner.

Kinds (run order: :func:`plan`; most valuable first, so that a partial run is already useful):

* ``relax``     dense polymorphs and low-energy generated phases relaxed (cell + positions, 0 GPa);
* ``pressure``  quartz (5-40 GPa), cristobalite and coesite (10, 20, 40 GPa) relaxed under pressure;
* ``md``        Langevin NVT snapshots at 300, 1200 and 600 K of the relaxed dense polymorphs in a
                supercell with perpendicular widths >= 8 Å (:func:`md_supercell`);
* ``amorphous`` melt-quench cells (72 atoms) at 2.2 g/cm3 and densified (3.0, 3.6 g/cm3), from a random
                packing or from a quartz network scaled to the density;
* ``zeolite``   IZA frameworks relaxed with CHGNet, smallest primitive cell first; MD snapshots
                (``md`` kind, 600 K) of the :data:`N_MD_ZEOLITES` smallest relaxed frameworks.

Every finished task is one ``<task id>.json.gz`` in a cache folder (written atomically), so an
interrupted run resumes where it stopped. Records carry provenance in ``meta``: generator, CHGNet
version, temperature_k, pressure_gpa, seed, parent, group, energy per atom and ``e_above_quartz``
(eV/atom, relative to the CHGNet-relaxed alpha-quartz of the same run).
"""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from coreloss.fileio import atomic_write_bytes
from coreloss.structures.chgnet_tools import chgnet_version
from coreloss.structures.generate import CITE_CHGNET
from coreloss.structures.record import StructureRecord

KINDS = ("relax", "pressure", "md", "amorphous", "zeolite")
SOURCES = {"relax": "chgnet-relaxed", "pressure": "chgnet-pressure", "md": "chgnet-md",
           "amorphous": "chgnet-amorphous", "zeolite": "chgnet-relaxed"}
QUARTZ = "pyxtal-lt_quartz"
DENSE = (QUARTZ, "pyxtal-lt_cristobalite", "aflow-A2B_hP12_194_cg_f", "ref-coesite", "ref-stishovite",
         "gen-A2B_mP12_14_2e_e", "gen-A2B_oP12_19_2a_a", "gen-AB2_hP9_180_d_j", "aflow-A2B_tP36_96_3b_ab")
HP_PARENTS = (QUARTZ, "pyxtal-lt_cristobalite", "ref-coesite")
PRESSURES = (5.0, 10.0, 20.0, 30.0, 40.0)               # GPa, quartz
PRESSURES_OTHER = (10.0, 20.0, 40.0)                    # GPa, cristobalite and coesite
MD_PARENTS = (QUARTZ, "pyxtal-lt_cristobalite", "aflow-A2B_hP12_194_cg_f", "ref-coesite",
              "ref-stishovite", "gen-A2B_mP12_14_2e_e")
TEMPERATURES = (300.0, 1200.0, 600.0)                   # K
MD_MAX_ATOMS = 150
# (density g/cm3, quench ps, seed, start): ambient and densified, two quench rates, a random packing
# or a quartz network scaled to the density as start. Measured: at 2.2 g/cm3 the random start
# quenched in 0.5 ps kept coordination defects (Si CN 3, O CN 1: dropped by the checks) and the
# quartz start did not melt in 0.3 ps at 5000 K (MSD 0.44 A^2: dropped, see MELT_MSD_MIN).
AMORPHOUS = ((2.2, 0.5, 0, "quartz"), (3.6, 0.5, 0, "random"), (2.2, 2.0, 0, "random"),
             (3.0, 0.5, 0, "random"), (3.6, 0.5, 0, "quartz"), (3.6, 0.5, 1, "random"),
             (2.2, 0.5, 0, "random"), (2.2, 2.0, 0, "quartz"))
# Ambient glass, slow protocol (density, quench ps, seed): random start, 2 ps liquid at 4500 K (melt
# checked by the MSD curve), linear quench to 300 K, 0.2 ps anneal, 2 fs steps; run before the above.
AMBIENT_GLASS = ((2.2, 6.0, 0), (2.2, 6.0, 1), (2.2, 3.0, 2))
SLOW_PROTOCOL = {"t_melt_k": 4500.0, "melt_ps": 2.0, "anneal_ps": 0.2, "timestep_fs": 2.0, "relax_steps": 400}
N_SIO2_AMORPHOUS = 24                                   # 72 atoms
FMAX, RELAX_STEPS = 0.05, 600
MELT_MSD_MIN = 1.0                                      # A^2: a crystal start below this did not melt
N_EARLY_ZEOLITES = 12                                   # smallest frameworks, run after 1200 K MD
# thermal snapshots of the smallest relaxed frameworks (a relaxation keeps the idealised symmetry,
# linear Si-O-Si included; MD breaks it): two snapshots at this temperature each
N_MD_ZEOLITES, ZEOLITE_MD_K = 10, 600.0


@dataclass
class Task:
    """One unit of CHGNet work: ``kind``, ``id`` (cache file name), ``parent`` id, ``params``."""

    id: str
    kind: str
    parent: str | None = None
    params: dict = field(default_factory=dict)


def _fmt(x: float) -> str:
    return f"{x:g}".replace(".", "p")


def plan(parents: dict[str, Structure], zeolites: list[StructureRecord] = (),
         kinds: tuple[str, ...] = KINDS) -> list[Task]:
    """The ordered task list for the available ``parents`` (id -> structure) and zeolite records.

    Order (value per CPU second first): dense relaxations, high pressure, MD at 300 K, the first
    ambient and densified glasses, the slow-quench ambient glasses, MD at 1200 K, the 12 smallest zeolites, MD at 600 K, the other
    amorphous cells, keatite and the other zeolites (smallest cell first).
    """
    tasks: list[tuple[int, Task]] = []
    for p in DENSE:
        if p in parents:
            prio = 0 if p != "aflow-A2B_tP36_96_3b_ab" else 6
            tasks.append((prio, Task(f"relax-{p}", "relax", p,
                                     {"pressure_gpa": 0.0, "fmax": FMAX, "steps": RELAX_STEPS})))
    for p in HP_PARENTS:
        for pr in (PRESSURES if p == QUARTZ else PRESSURES_OTHER):
            if p in parents:
                tasks.append((1, Task(f"hp-{p}-{_fmt(pr)}GPa", "pressure", p,
                                      {"pressure_gpa": pr, "fmax": FMAX, "steps": RELAX_STEPS})))
    for t in TEMPERATURES:
        for p in MD_PARENTS:
            if p in parents:
                tasks.append(({300.0: 2, 1200.0: 3}.get(t, 4), Task(
                    f"md-{p}-{_fmt(t)}K", "md", p,
                    {"temperature_k": t, "seed": 0, "equil_steps": 100, "interval": 50,
                     "n_snapshots": 2 if t == max(TEMPERATURES) else 1, "timestep_fs": 2.0,
                     "min_image_distance": 8.0})))
    for k, (rho, q, seed, start) in enumerate(AMORPHOUS):
        params = {"density": rho, "quench_ps": q, "seed": seed, "n_sio2": N_SIO2_AMORPHOUS, "t_melt_k": 4000.0,
                  "melt_ps": 0.2, "anneal_ps": 0.05, "timestep_fs": 1.5, "relax_cell": False}
        if start != "random":  # a crystal network must melt first: hotter and longer
            params.update(start=start, t_melt_k=5000.0, melt_ps=0.3)
        tid = f"amo-{_fmt(rho)}gcc-q{_fmt(q)}ps-s{seed}" + ("-xq" if start == "quartz" else "")
        prio = {0: 2.5, 1: 2.7}.get(k, 5)
        tasks.append((prio, Task(tid, "amorphous", None, params)))
        # the same cell relaxed at 0 GPa with its cell free: CHGNet's own glass density
        tasks.append((prio + 0.01, Task(f"{tid}-cell", "amorphous", tid,
                                        {"relax_of": tid, "fmax": FMAX, "steps": 300})))
    for k, (rho, q, seed) in enumerate(AMBIENT_GLASS):
        tid = f"amo-{_fmt(rho)}gcc-q{_fmt(q)}ps-s{seed}"
        params = {"density": rho, "quench_ps": q, "seed": seed, "n_sio2": N_SIO2_AMORPHOUS, **SLOW_PROTOCOL,
                  "relax_cell": False}
        tasks.append((2.6 + 0.02 * k, Task(tid, "amorphous", None, params)))
        tasks.append((2.61 + 0.02 * k, Task(f"{tid}-cell", "amorphous", tid, {"relax_of": tid, "fmax": FMAX,
                                                                            "steps": 300})))
    for k, rec in enumerate(sorted(zeolites, key=lambda r: (len(r.structure), r.id))):
        parents.setdefault(rec.id, rec.structure)
        tasks.append((3.2 if k < N_EARLY_ZEOLITES else 7, Task(f"relax-{rec.id}", "zeolite", rec.id,
                              {"pressure_gpa": 0.0, "fmax": FMAX, "steps": RELAX_STEPS})))
        if k < N_MD_ZEOLITES:  # starts from relax-<id> once that ran (_relaxed_parent)
            tasks.append((3.3, Task(f"md-{rec.id}-{_fmt(ZEOLITE_MD_K)}K", "md", rec.id, {
                "temperature_k": ZEOLITE_MD_K, "seed": 0, "equil_steps": 100, "interval": 50,
                "n_snapshots": 2, "timestep_fs": 2.0, "min_image_distance": 8.0})))
    ordered = [t for _, t in sorted(tasks, key=lambda x: x[0])]
    return [t for t in ordered if t.kind in kinds]


# ----------------------------------------------------------------------------- running one task
def md_supercell(structure: Structure, min_image_distance: float = 8.0, max_atoms: int = MD_MAX_ATOMS):
    """Supercell for MD snapshots whose perpendicular widths are all >= ``min_image_distance`` (Å),
    so that the engines compute the snapshot as it is: the engines' diagonal one where it has at
    most ``max_atoms`` atoms, else the smallest near-cubic one (``ase.build.find_optimal_cell_shape``)
    that qualifies (e.g. coesite: 72 instead of 192 atoms); ``None`` if none is small enough."""
    import numpy as np

    from coreloss.engines._supercell import perpendicular_widths, supercell_scaling

    diag = supercell_scaling(structure.lattice, min_image_distance)
    if len(structure) * int(np.prod(diag)) <= max_atoms:
        return list(diag)
    from ase.build import find_optimal_cell_shape

    for n in range(2, max_atoms // len(structure) + 1):
        P = np.asarray(find_optimal_cell_shape(structure.lattice.matrix, n, "sc"), int)
        P = -P if np.linalg.det(P) < 0 else P  # keep a right-handed cell
        if (perpendicular_widths(P @ structure.lattice.matrix) >= min_image_distance).all():
            return P.tolist()
    return None



def _relaxed_parent(task: Task, parents: dict, cache_dir: Path | None) -> tuple[Structure, str]:
    """The 0-GPa CHGNet-relaxed parent where it exists (cache), else the parent as given."""
    done = _cache_read(cache_dir, f"relax-{task.parent}")
    if done and done.get("records"):
        return Structure.from_dict(done["records"][0]["structure"]), f"relax-{task.parent}"
    return parents[task.parent], task.parent


def _run_task(task: Task, parents: dict, cache_dir: Path | None) -> list[dict]:
    """Run one task; returns record dicts {id, structure (dict), meta}."""
    from coreloss.structures import chgnet_tools as ct

    p = task.params
    if task.kind in ("relax", "pressure", "zeolite"):
        start, start_id = (parents[task.parent], task.parent) if task.kind != "pressure" else \
            _relaxed_parent(task, parents, cache_dir)
        res = ct.relax_at_pressure(start, p["pressure_gpa"], fmax=p["fmax"], steps=p["steps"])
        meta = {"temperature_k": 0.0, "pressure_gpa": p["pressure_gpa"], "start": start_id,
                "relax_steps": res["steps"], "converged": res["converged"],
                "fmax_final": round(res["fmax_final"], 4), "residual_pressure_gpa": round(res["pressure_gpa"], 3),
                "energy_per_atom": round(res["energy_per_atom"], 5), "seconds": round(res["seconds"], 1)}
        if not res["converged"]:
            meta["error"] = f"not converged in {p['steps']} FIRE steps (max force {res['fmax_final']:.2f} eV/A)"
        return [{"id": task.id, "structure": res["structure"].as_dict(), "meta": meta}]
    if task.kind == "md":
        start, start_id = _relaxed_parent(task, parents, cache_dir)
        scale = md_supercell(start, p["min_image_distance"])
        if scale is None:
            return []
        cell = start.copy()
        cell.make_supercell(scale)
        scale = [list(map(int, row)) for row in scale] if isinstance(scale[0], list) else list(map(int, scale))
        res = ct.md_snapshots(cell, p["temperature_k"], p["seed"], p["equil_steps"], p["n_snapshots"],
                              p["interval"], p["timestep_fs"])
        out = []
        for k, (s, step, e, temp) in enumerate(res["snapshots"]):
            out.append({"id": f"{task.id}-{k}", "structure": s.as_dict(), "meta": {
                "temperature_k": p["temperature_k"], "pressure_gpa": 0.0, "seed": p["seed"], "start": start_id,
                "supercell": list(scale), "md_step": step, "md_time_fs": step * p["timestep_fs"],
                "instantaneous_temperature_k": round(temp, 1), "energy_per_atom": round(e, 5),
                "seconds": round(res["seconds"], 1)}})
        return out
    if task.kind == "amorphous" and "relax_of" in p:
        done = _cache_read(cache_dir, p["relax_of"])
        if not done or not done.get("records"):
            raise RuntimeError(f"{p['relax_of']} has not run yet")
        first = done["records"][0]
        res = ct.relax_at_pressure(Structure.from_dict(first["structure"]), 0.0, fmax=p["fmax"],
                                   steps=p["steps"], relax_cell=True)
        return [{"id": task.id, "structure": res["structure"].as_dict(), "meta": {
            **{k: v for k, v in first["meta"].items() if k not in ("relax_steps", "converged", "seconds")},
            "temperature_k": 0.0, "pressure_gpa": 0.0, "start": p["relax_of"], "target_density": None,
            "residual_pressure_gpa": round(res["pressure_gpa"], 3), "relax_steps": res["steps"],
            "converged": res["converged"], "energy_per_atom": round(res["energy_per_atom"], 5),
            "seconds": round(res["seconds"], 1)}}]
    if task.kind == "amorphous":
        res = ct.melt_quench(p["n_sio2"], p["density"], p["seed"], t_melt=p["t_melt_k"], melt_ps=p["melt_ps"],
                             quench_ps=p["quench_ps"], anneal_ps=p["anneal_ps"], timestep=p["timestep_fs"],
                             relax_cell=p["relax_cell"], relax_steps=p.get("relax_steps", 250),
                             prerelax_steps=p.get("prerelax_steps", 60), start=p.get("start", "random"))
        return [{"id": task.id, "structure": res["structure"].as_dict(), "meta": {
            "temperature_k": 300.0, "pressure_gpa": round(res["pressure_gpa"], 3), "seed": p["seed"],
            "target_density": p["density"], "start": p.get("start", "random"), "quench_rate_k_per_s": float(f"{res['quench_rate_k_per_s']:.3g}"),
            "msd_melt_a2": round(res["msd_melt"], 2),
            "msd_melt_curve": [[t, round(m, 2)] for t, m in res["msd_curve"]], "md_steps": res["md_steps"],
            "relax_steps": res["steps"], "converged": res["converged"],
            "energy_per_atom": round(res["energy_per_atom"], 5), "seconds": round(res["seconds"], 1)}}]
    raise ValueError(f"unknown task kind {task.kind!r}")


# ----------------------------------------------------------------------------- cache
def _cache_path(cache_dir: Path | None, task_id: str) -> Path | None:
    return cache_dir / f"{task_id}.json.gz" if cache_dir is not None else None


def _cache_read(cache_dir: Path | None, task_id: str) -> dict | None:
    path = _cache_path(cache_dir, task_id)
    if path is None or not path.is_file():
        return None
    return json.loads(gzip.decompress(path.read_bytes()))


def _cache_write(cache_dir: Path, doc: dict) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(_cache_path(cache_dir, doc["task"]), gzip.compress(json.dumps(doc).encode(), mtime=0))


def read_cache(cache_dir: str | Path) -> list[dict]:
    """Every finished task doc of a cache folder, in plan order where possible (else by name)."""
    from coreloss.errors import CorelossError

    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        raise CorelossError(f"CHGNet cache folder not found: {cache_dir}")
    return [json.loads(gzip.decompress(p.read_bytes())) for p in sorted(cache_dir.glob("*.json.gz"))]


def run(tasks: list[Task], parents: dict[str, Structure], cache_dir: str | Path | None = None,
        max_seconds: float | None = None, log=print) -> list[dict]:
    """Run ``tasks`` in order, skipping those cached with the same parameters; returns the task docs.

    ``max_seconds``: start no new task after this wall time (the finished ones stay cached).
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else None
    t0, docs = time.perf_counter(), []
    for i, task in enumerate(tasks):
        doc = _cache_read(cache_dir, task.id)
        if doc is not None and doc.get("params") == task.params and doc.get("parent") == task.parent:
            docs.append(doc)
            continue
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            log(f"time limit reached before {task.id}; {len(tasks) - i} tasks left")
            break
        t1 = time.perf_counter()
        try:
            records, error = _run_task(task, parents, cache_dir), None
        except Exception as exc:  # a diverging run must not stop the batch
            records, error = [], f"{type(exc).__name__}: {exc}"
        doc = {"task": task.id, "kind": task.kind, "parent": task.parent, "params": task.params,
               "chgnet_version": chgnet_version(), "records": records, "error": error,
               "seconds": round(time.perf_counter() - t1, 1)}
        if cache_dir is not None:
            _cache_write(cache_dir, doc)
        docs.append(doc)
        log(f"[{i + 1}/{len(tasks)}] {task.id}: {len(records)} record(s) in {doc['seconds']} s"
            + (f" ({error})" if error else ""))
    return docs


# ----------------------------------------------------------------------------- records
def _citation(kind: str) -> str:
    what = {"relax": "relaxed", "pressure": "relaxed under pressure", "md": "Langevin MD snapshot",
            "amorphous": "melt-quench", "zeolite": "IZA framework relaxed"}[kind]
    return f"{what} with {CITE_CHGNET}"


def _crystal_start(doc: dict, docs: list[dict]) -> bool:
    """True if an amorphous task (or the glass a ``-cell`` task relaxes) started from a crystal."""
    p = doc["params"]
    if "relax_of" in p:
        src = next((d for d in docs if d["task"] == p["relax_of"]), None)
        return src is not None and src["params"].get("start", "random") != "random"
    return p.get("start", "random") != "random"


def records_from_docs(docs: list[dict], groups: dict[str, str] | None = None) -> tuple[list[StructureRecord], list]:
    """StructureRecords of finished task docs and ``(id, source, reason)`` for failures.

    ``groups`` maps parent ids to their group (default: the parent id); an amorphous cell is its own
    group. ``e_above_quartz`` uses the CHGNet-relaxed quartz (task ``relax-pyxtal-lt_quartz``).
    """
    from coreloss.structures.checks import canonical_cell

    groups = groups or {}
    ref = next((d["records"][0]["meta"]["energy_per_atom"] for d in docs
                if d["task"] == f"relax-{QUARTZ}" and d.get("records")), None)
    records, dropped = [], []
    for d in docs:
        source = SOURCES[d["kind"]]
        if d.get("error"):
            dropped.append((d["task"], source, f"CHGNet {d['kind']} failed: {d['error']}"))
        for r in d.get("records", []):
            meta = dict(r["meta"])
            if meta.get("error"):
                dropped.append((r["id"], source, meta["error"]))
                continue
            if d["kind"] == "amorphous" and meta.get("start") != "random" and \
                    meta.get("msd_melt_a2", np.inf) < MELT_MSD_MIN and _crystal_start(d, docs):
                dropped.append((r["id"], source, f"did not melt: mean square displacement {meta['msd_melt_a2']} "
                                                 f"A^2 < {MELT_MSD_MIN} in the liquid stage"))
                continue
            s = Structure.from_dict(r["structure"])
            if d["kind"] in ("relax", "pressure", "zeolite"):
                s, sym = canonical_cell(s, symprec=0.05)
                meta.update(sym)
            else:
                s = s.get_sorted_structure(key=lambda x: (x.specie.symbol != "Si", x.specie.symbol))
            parent = d.get("parent")
            meta.update({"generator": f"chgnet-{d['kind']}", "chgnet_version": d.get("chgnet_version"),
                         "parent": parent, "group": groups.get(parent, parent) if parent else r["id"],
                         "task_params": d["params"], "units": "eV/atom, GPa, K"})
            if ref is not None:
                meta["e_above_quartz"] = round(meta["energy_per_atom"] - ref, 5)
            records.append(StructureRecord(r["id"], s, source, _citation(d["kind"]), meta))
    return records, dropped


def default_parents(zeolites: bool = True, max_atoms: int = 150) -> tuple[dict[str, Structure], list]:
    """(parent id -> structure, zeolite records): pyxtal quartz/cristobalite, AFLOW tridymite/keatite,
    literature coesite and stishovite (:mod:`.reference`), the shipped CHGNet-generated phases, and the
    IZA frameworks (zeose) when ``zeolites``."""
    from coreloss.structures import reference, sources
    from coreloss.structures.build import shipped_generated
    from coreloss.structures.checks import canonical_cell, check_sio2

    recs = sources.read_pyxtal() + sources.read_aflow(max_atoms=max_atoms) + shipped_generated()
    parents = {r.id: r.structure for r in recs}
    parents["ref-coesite"] = canonical_cell(reference.coesite())[0]
    parents["ref-stishovite"] = canonical_cell(reference.stishovite())[0]
    zeo = [r for r in sources.read_zeose(max_atoms) if not check_sio2(r.structure)] if zeolites else []
    return parents, zeo
