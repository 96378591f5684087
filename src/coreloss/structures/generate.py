"""Hypothetical SiO2 polymorphs: Si/O substituted into AFLOW AB2 prototypes, relaxed with CHGNet.

Per prototype (<= ``max_atoms`` atoms): the doubly-abundant element becomes O, the other Si; a non-SiO2
prototype is first scaled isotropically so that its shortest Si-O distance is 1.62 A (and no O-O < 2.3 A,
Si-Si < 2.6 A); then CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)) relaxes positions and cell
(FIRE, ``fmax`` eV/A). ``meta`` records the CHGNet energy per atom and the energy relative to the
CHGNet-relaxed alpha-quartz (``e_above_quartz``, eV/atom). Sanity checks and dedup happen in the build.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from pymatgen.core import Structure

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
        _MODEL = CHGNet.load(verbose=False)
    return _MODEL


def relax(structure: Structure, fmax: float = 0.05, steps: int = 1500) -> dict:
    """CHGNet relaxation (positions + cell); returns final structure, energy per atom, steps, time."""
    import io
    import contextlib
    from chgnet.model import StructOptimizer

    _init_worker()
    t0 = time.perf_counter()
    opt = StructOptimizer(model=_model(), optimizer_class="FIRE", use_device="cpu")
    with contextlib.redirect_stdout(io.StringIO()):
        res = opt.relax(structure, fmax=fmax, steps=steps, relax_cell=True, verbose=False)
    final = res["final_structure"]
    pred = _model().predict_structure(final)
    n_steps = len(res["trajectory"].energies)
    return {"structure": final, "energy_per_atom": float(pred["e"]), "steps": n_steps,
            "converged": n_steps < steps, "seconds": time.perf_counter() - t0}


def _job(args):
    label, structure, fmax, steps = args
    try:
        return label, relax(structure, fmax=fmax, steps=steps), None
    except Exception as exc:  # a diverging relaxation must not stop the batch
        return label, None, f"CHGNet relaxation failed: {type(exc).__name__}: {exc}"


def generate_sio2(max_atoms: int = 36, workers: int = 2, fmax: float = 0.05, steps: int = 1500,
                  labels: list[str] | None = None, dropped: list | None = None,
                  progress: bool = True) -> list[StructureRecord]:
    """Relax SiO2-substituted AFLOW AB2 prototypes with CHGNet; records ``gen-<aflow label>``.

    ``labels`` restricts to some prototypes (alpha-quartz is always relaxed as the energy reference).
    Unchecked: run :func:`coreloss.structures.checks.check_sio2` on the result.
    """
    from rich.progress import Progress

    protos = {}
    for label, tags, sub in ab2_prototypes(max_atoms):
        rid = f"gen-{_slug(label)}"
        if rid in protos:  # two prototypes with one label (different parent compounds)
            rid = f"{rid}-{_slug(tags.get('mineral') or 'b')}"
        protos[rid] = (label, tags, sub)
    keep = {k: v for k, v in protos.items() if labels is None or v[0] in labels or k in labels
            or v[0] == QUARTZ_PROTOTYPE}
    jobs = []
    for rid, (label, tags, sub) in keep.items():
        start = sub if _is_sio2_parent(label) else prescale(sub)
        jobs.append((rid, start, fmax, steps))
    results = {}
    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task("CHGNet relaxations", total=len(jobs))
        if workers > 1:
            with ProcessPoolExecutor(workers, initializer=_init_worker) as pool:
                for rid, res, err in pool.map(_job, jobs):
                    results[rid] = (res, err)
                    bar.advance(task)
        else:
            for job in jobs:
                rid, res, err = _job(job)
                results[rid] = (res, err)
                bar.advance(task)
    ref = results.get(f"gen-{_slug(QUARTZ_PROTOTYPE)}", (None, None))[0]
    e_ref = ref["energy_per_atom"] if ref else float("nan")
    records = []
    for rid, (label, tags, _) in keep.items():
        res, err = results[rid]
        if res is None:
            if dropped is not None:
                dropped.append((rid, "generated-chgnet", err))
            continue
        prim, meta = canonical_cell(res["structure"], symprec=0.05)
        meta = {"prototype": label, "prototype_mineral": tags.get("mineral", ""),
                "chgnet_energy_per_atom": round(res["energy_per_atom"], 5),
                "e_above_quartz": round(res["energy_per_atom"] - e_ref, 5),
                "relax_steps": res["steps"], "converged": res["converged"], "fmax": fmax,
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
