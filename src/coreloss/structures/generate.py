"""Hypothetical SiO2 polymorphs: Si/O substituted into AFLOW AB2 prototypes, relaxed with CHGNet.

Per prototype (<= ``max_atoms`` atoms): the doubly-abundant element becomes O, the other Si; a non-SiO2
prototype is first scaled isotropically so that its shortest Si-O distance is 1.62 A (and no O-O < 2.3 A,
Si-Si < 2.6 A); then CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)) relaxes positions and cell
(FIRE, ``fmax`` eV/A, at most ``steps``; unconverged ones are dropped). ``meta`` records the CHGNet energy per atom and the energy relative to the
CHGNet-relaxed alpha-quartz (``e_above_quartz``, eV/atom). Sanity checks and dedup happen in the build.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from coreloss.fileio import atomic_write_bytes
from coreloss.structures.checks import canonical_cell
from coreloss.structures.record import StructureRecord
from coreloss.structures.sources import CITE_AFLOW, _aflow_structure, _slug, aflow_prototypes

CITE_CHGNET = "CHGNet: B. Deng et al., Nat. Mach. Intell. 5, 1031 (2023)"
CITE_GENERATED = f"Generated from {CITE_AFLOW}; relaxed with {CITE_CHGNET}"
QUARTZ_PROTOTYPE = "A2B_hP9_152_c_a"
TARGET_SI_O = 1.62  # A

_MODEL = None


def ab2_prototypes(max_atoms: int = 36) -> list[tuple[str, dict, Structure]]:
    """(aflow label, tags, SiO2-substituted unscaled structure) for every AB2 prototype <= max_atoms."""
    out = []
    for entry in aflow_prototypes():
        s = _aflow_structure(entry)
        comp = s.composition.reduced_composition
        if len(comp) != 2 or sorted(comp.values()) != [1, 2] or len(s) > max_atoms:
            continue
        anion = max(comp.elements, key=lambda e: comp[e])
        sub = Structure(s.lattice, ["O" if sp == anion else "Si" for sp in s.species], s.frac_coords)
        out.append((entry["tags"]["aflow"], entry["tags"], sub, s.composition.reduced_formula))
    out.sort(key=lambda t: (t[0], t[3]))
    return [(label, tags, sub) for label, tags, sub, _ in out]


def prescale(structure: Structure) -> Structure:
    """Isotropic scaling: shortest Si-O 1.62 A, but no O-O < 2.3 A and no Si-Si < 2.6 A."""
    sym = np.array([sp.symbol for sp in structure.species])
    c, p, _, d = structure.get_neighbor_list(8.0)

    def dmin(a: str, b: str) -> float | None:
        m = (sym[c] == a) & (sym[p] == b)
        return float(d[m].min()) if m.any() else None

    factor = TARGET_SI_O / dmin("Si", "O") if dmin("Si", "O") else 1.0
    for a, b, target in (("O", "O", 2.3), ("Si", "Si", 2.6)):
        if dmin(a, b):
            factor = max(factor, target / dmin(a, b))
    out = structure.copy()
    out.scale_lattice(structure.volume * factor ** 3)
    return out


def _init_worker() -> None:
    import torch
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def _model():
    global _MODEL
    if _MODEL is None:
        from chgnet.model import CHGNet
        with contextlib.redirect_stdout(io.StringIO()):
            _MODEL = CHGNet.load(verbose=False)
    return _MODEL


def relax(structure: Structure, fmax: float = 0.05, steps: int = 1500) -> dict:
    """CHGNet relaxation (positions + cell); returns final structure, energy per atom, steps, time."""
    from chgnet.model import StructOptimizer

    _init_worker()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = StructOptimizer(model=_model(), optimizer_class="FIRE", use_device="cpu")
        res = opt.relax(structure, fmax=fmax, steps=steps, relax_cell=True, verbose=False)
        final = res["final_structure"]
        pred = _model().predict_structure(final)
    n_steps = max(len(res["trajectory"].energies) - 2, 0)  # observer: initial + final extra calls
    fmax_final = float(np.linalg.norm(np.asarray(pred["f"]), axis=1).max())
    return {"structure": final, "energy_per_atom": float(pred["e"]), "steps": n_steps,
            "converged": n_steps < steps, "fmax_final": fmax_final,
            "seconds": time.perf_counter() - t0}


def _job(args):
    label, structure, fmax, steps = args
    try:
        return label, relax(structure, fmax=fmax, steps=steps), None
    except Exception as exc:  # a diverging relaxation must not stop the batch
        return label, None, f"CHGNet relaxation failed: {type(exc).__name__}: {exc}"


def _cache_get(cache_dir: Path | None, rid: str, fmax: float, steps: int):
    path = cache_dir / f"{rid}.json" if cache_dir else None
    if path is None or not path.is_file():
        return None
    doc = json.loads(path.read_text())
    if doc.get("fmax") != fmax or doc.get("steps_max") != steps:
        return None
    res = doc.get("result")
    if res is not None:
        res = {**res, "structure": Structure.from_dict(res["structure"])}
    return res, doc.get("error")


def _cache_put(cache_dir: Path | None, rid: str, fmax: float, steps: int, res, err) -> None:
    if cache_dir is None:
        return
    res = None if res is None else {**res, "structure": res["structure"].as_dict()}
    doc = {"fmax": fmax, "steps_max": steps, "result": res, "error": err}
    atomic_write_bytes(cache_dir / f"{rid}.json", json.dumps(doc).encode())


def generate_sio2(max_atoms: int = 36, workers: int = 2, fmax: float = 0.05, steps: int = 500,
                  labels: list[str] | None = None, dropped: list | None = None,
                  progress: bool = True, cache_dir: str | Path | None = None) -> list[StructureRecord]:
    """Relax SiO2-substituted AFLOW AB2 prototypes with CHGNet; records ``gen-<aflow label>``.

    ``labels`` restricts to some prototypes (alpha-quartz is always relaxed as the energy reference).
    Relaxations not converged within ``steps`` are dropped. ``cache_dir`` keeps one JSON per finished
    relaxation so that an interrupted run resumes. Unchecked: run
    :func:`coreloss.structures.checks.check_sio2` on the result.
    """
    from rich.progress import Progress

    cache_dir = Path(cache_dir) if cache_dir else None
    protos = {}
    for label, tags, sub in ab2_prototypes(max_atoms):
        rid = f"gen-{_slug(label)}"
        if rid in protos:  # two prototypes with one label (different parent compounds)
            rid = f"{rid}-{_slug(tags.get('mineral') or 'b')}"
        base, k = rid, 2
        while rid in protos:
            rid, k = f"{base}-{k}", k + 1
        protos[rid] = (label, tags, sub)
    keep = {k: v for k, v in protos.items() if labels is None or v[0] in labels or k in labels
            or v[0] == QUARTZ_PROTOTYPE}
    results, jobs = {}, []
    for rid, (label, tags, sub) in keep.items():
        cached = _cache_get(cache_dir, rid, fmax, steps)
        if cached is not None:
            results[rid] = cached
            continue
        start = sub if _is_sio2_parent(label) else prescale(sub)
        jobs.append((rid, start, fmax, steps))
    jobs.sort(key=lambda j: (len(j[1]), j[0]))  # small cells first
    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task("CHGNet relaxations", total=len(keep), completed=len(results))
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(workers, initializer=_init_worker) as pool:
                futures = [pool.submit(_job, job) for job in jobs]
                for fut in as_completed(futures):
                    rid, res, err = fut.result()
                    results[rid] = (res, err)
                    _cache_put(cache_dir, rid, fmax, steps, res, err)
                    bar.advance(task)
        else:
            for job in jobs:
                rid, res, err = _job(job)
                results[rid] = (res, err)
                _cache_put(cache_dir, rid, fmax, steps, res, err)
                bar.advance(task)
    ref = results.get(f"gen-{_slug(QUARTZ_PROTOTYPE)}", (None, None))[0]
    e_ref = ref["energy_per_atom"] if ref else float("nan")
    records = []
    for rid, (label, tags, _) in keep.items():
        res, err = results[rid]
        if res is not None:  # FIRE stops early only when converged (cell filter forces < fmax)
            res["converged"] = res["steps"] < steps
        if res is not None and not res["converged"]:
            err = f"CHGNet relaxation not converged in {steps} steps (max force {res['fmax_final']:.2f} eV/A)"
        if err is not None:
            if dropped is not None:
                dropped.append((rid, "generated-chgnet", err))
            continue
        prim, meta = canonical_cell(res["structure"], symprec=0.05)
        meta = {"prototype": label, "prototype_mineral": tags.get("mineral", ""),
                "chgnet_energy_per_atom": round(res["energy_per_atom"], 5),
                "e_above_quartz": round(res["energy_per_atom"] - e_ref, 5),
                "relax_steps": res["steps"], "converged": res["converged"], "fmax": fmax,
                "fmax_final": round(res["fmax_final"], 4),
                "relax_seconds": round(res["seconds"], 1), "units": "eV/atom", **meta}
        records.append(StructureRecord(rid, prim, "generated-chgnet", CITE_GENERATED, meta))
    return records


def _is_sio2_parent(label: str) -> bool:
    """True for prototypes that are SiO2 already (no rescale): their parent formula is SiO2."""
    return label in _sio2_labels()


_SIO2_LABELS: set | None = None


def _sio2_labels() -> set:
    global _SIO2_LABELS
    if _SIO2_LABELS is None:
        _SIO2_LABELS = {e["tags"]["aflow"] for e in aflow_prototypes()
                        if _aflow_structure(e).composition.reduced_formula == "SiO2"}
    return _SIO2_LABELS
