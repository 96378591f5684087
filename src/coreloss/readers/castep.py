"""Read CASTEP / OptaDOS results a user already has into coreloss :class:`SiteResult` objects.

Text formats read (the last table wins when a ``.castep`` file holds several, e.g. a relaxation):

* ``.castep``: the ``Atomic Populations (Mulliken)`` table (spin-paired and spin-polarised
  layouts), the ``Bond  Population  Length (A)`` table (optionally with a ``Spin`` column),
  the ``Cell Contents`` ion list and ``Final energy`` lines.
* OptaDOS ``<seed>_core_edge.dat`` (one block per edge, header ``# O 1 K1``) and
  ``<seed>_core.dat`` (one block per core orbital): columns energy (eV), intensity and, when
  OptaDOS broadened the spectrum, the broadened intensity (used when present). CASTEP's
  ``.elnes_bin`` is binary: run OptaDOS on it first.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from coreloss.engines.base import SiteResult
from coreloss.errors import CorelossError
from coreloss.spectra import onset_energy

_FLOAT = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eEdD][-+]?\d+)?"


def _lines(path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise CorelossError(f"file not found: {path}")
    try:
        return path.read_text(errors="strict").splitlines()
    except UnicodeDecodeError as exc:
        raise CorelossError(f"{path} is not a text file ({exc.reason})") from exc


def _is_rule(line: str) -> bool:
    s = line.strip()
    return len(s) >= 10 and set(s) == {"="}


def _last_table(lines: list[str], header_test, path, what: str) -> tuple[list[str], str]:
    """Rows between the ``====`` rules after the last header line; and the column header line."""
    starts = [i for i, ln in enumerate(lines) if header_test(ln)]
    if not starts:
        raise CorelossError(f"{path}: no {what} table found")
    i = starts[-1]
    rules = [j for j in range(i, min(i + 6, len(lines))) if _is_rule(lines[j])]
    if not rules:
        raise CorelossError(f"{path}: malformed {what} table (no ==== rule)")
    head = lines[rules[0] - 1]
    rows = []
    for j in range(rules[0] + 1, len(lines)):
        if _is_rule(lines[j]):
            return rows, head
        if lines[j].strip():
            rows.append(lines[j])
    raise CorelossError(f"{path}: truncated {what} table (no closing ==== rule)")


def read_mulliken(path) -> list[dict]:
    """Mulliken populations from a ``.castep`` file, one dict per ion.

    Keys: ``species``, ``ion`` (CASTEP's 1-based number within the species), ``s``, ``p``,
    ``d``, ``f``, ``total`` (e), ``charge`` (e); spin-polarised runs add ``spin`` (hbar/2) and
    sum the up/down orbital populations.
    """
    lines = _lines(path)
    rows, head = _last_table(lines, lambda ln: "Atomic Populations (Mulliken)" in ln, path,
                             "Mulliken population")
    spin = "Spin" in head.split("Charge")[0]
    out: list[dict] = []
    try:
        for row in rows:
            tok = row.split()
            if spin and tok[0].isdigit():  # the "dn:" line of the previous ion
                vals = [float(x) for x in tok[2:7]]
                rec = out[-1]
                for k, v in zip(("s", "p", "d", "f", "total"), vals):
                    rec[k] += v
                continue
            if spin:  # Species Ion up: s p d f Total Charge Spin
                vals = [float(x) for x in tok[3:10]]
                if len(vals) != 7:
                    raise ValueError(row)
                rec = dict(zip(("s", "p", "d", "f", "total", "charge", "spin"), vals))
            else:  # Species Ion s p d f Total Charge
                vals = [float(x) for x in tok[2:8]]
                if len(vals) != 6:
                    raise ValueError(row)
                rec = dict(zip(("s", "p", "d", "f", "total", "charge"), vals))
            out.append({"species": tok[0], "ion": int(tok[1]), **rec})
    except (ValueError, IndexError) as exc:
        raise CorelossError(f"{path}: cannot parse Mulliken row {str(exc)!r}") from exc
    if not out:
        raise CorelossError(f"{path}: empty Mulliken population table")
    return out


_ATOM = r"([A-Za-z][\w:]*)\s+(\d+)"
_BOND = re.compile(rf"^\s*{_ATOM}\s+--\s+{_ATOM}\s+((?:{_FLOAT}\s+)+){_FLOAT}\s*$")


def read_bond_populations(path) -> list[dict]:
    """Bond populations from a ``.castep`` file, one dict per listed bond.

    Keys: ``species1``, ``ion1``, ``species2``, ``ion2``, ``population`` (e), ``length`` (Å),
    and ``spin`` when the table has a spin column.
    """
    lines = _lines(path)
    rows, _ = _last_table(
        lines, lambda ln: re.match(r"^\s*Bond\s+Population\s+(Spin\s+)?Length", ln) is not None,
        path, "bond population")
    out = []
    for row in rows:
        m = _BOND.match(row)
        if not m:
            raise CorelossError(f"{path}: cannot parse bond population row {row.strip()!r}")
        nums = [float(x) for x in row.split("--")[1].split()[2:]]
        rec = {"species1": m.group(1), "ion1": int(m.group(2)), "species2": m.group(3),
               "ion2": int(m.group(4)), "population": nums[0], "length": nums[-1]}
        if len(nums) == 3:
            rec["spin"] = nums[1]
        out.append(rec)
    return out


def read_ions(path) -> list[tuple[str, int, tuple[float, float, float]]]:
    """The ``Cell Contents`` ion list of a ``.castep`` file: (species, ion, fractional coords).

    The list order is CASTEP's (species grouped), the order ASE and pymatgen readers keep.
    """
    lines = _lines(path)
    row = re.compile(rf"^\s*x\s+([A-Za-z][\w:]*)\s+(\d+)\s+({_FLOAT})\s+({_FLOAT})\s+({_FLOAT})\s+x\s*$")
    starts = [i for i, ln in enumerate(lines) if "Fractional coordinates of atoms" in ln]
    if not starts:
        raise CorelossError(f"{path}: no 'Cell Contents' ion list found")
    ions = []
    for ln in lines[starts[-1] + 1:]:
        m = row.match(ln)
        if m:
            ions.append((m.group(1), int(m.group(2)),
                         (float(m.group(3)), float(m.group(4)), float(m.group(5)))))
        elif ions and ln.strip().startswith("xxxx"):
            break
    if not ions:
        raise CorelossError(f"{path}: empty 'Cell Contents' ion list")
    return ions


def read_final_energy(path) -> float:
    """The last ``Final energy`` (eV) of a ``.castep`` file."""
    vals = [re.search(rf"=\s*({_FLOAT})\s*eV", ln) for ln in _lines(path)
            if ln.strip().startswith("Final energy")]
    vals = [float(m.group(1)) for m in vals if m]
    if not vals:
        raise CorelossError(f"{path}: no 'Final energy' line")
    return vals[-1]


def read_core_edge(path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """OptaDOS core-loss output -> ``(energy (n,), intensities (n_edges, n), labels)``.

    Each block starts with a ``#`` label line (``O 1 K1``, ``Ion: O 1 State: n=1 ang= s``);
    the broadened column is used when present. All blocks must share one energy axis.
    """
    blocks: list[tuple[str, list[list[float]]]] = []
    label = None
    for ln in _lines(path):
        s = ln.strip()
        if not s:
            continue
        if s.startswith("#"):
            text = s.lstrip("#").strip()
            if text and not set(text) <= {"*"} and re.match(r"^(Ion:\s*)?[A-Z][a-z]?\s+\d+\b", text):
                label = " ".join(text.split())
                blocks.append((label, []))
            continue
        try:
            vals = [float(x.replace("D", "E")) for x in s.split()]
        except ValueError as exc:
            raise CorelossError(f"{path}: not an OptaDOS core-loss file (bad row {s!r})") from exc
        if len(vals) not in (2, 3):
            raise CorelossError(f"{path}: expected 2 or 3 columns, got {len(vals)} in {s!r}")
        if not blocks:
            blocks.append(("edge", []))
        blocks[-1][1].append(vals)
    blocks = [(lab, rows) for lab, rows in blocks if rows]
    if not blocks:
        raise CorelossError(f"{path}: no spectrum data found")
    arrays = []
    for lab, rows in blocks:
        if len({len(r) for r in rows}) != 1:
            raise CorelossError(f"{path}: ragged columns in block {lab!r}")
        arrays.append(np.asarray(rows, float))
    energy = arrays[0][:, 0]
    for lab, a in zip((b[0] for b in blocks), arrays):
        if a.shape[0] != energy.size or not np.allclose(a[:, 0], energy):
            raise CorelossError(f"{path}: block {lab!r} is truncated or on another energy axis")
    if energy.size < 3 or np.any(np.diff(energy) <= 0):
        raise CorelossError(f"{path}: energy axis must increase with at least 3 points")
    return energy, np.stack([a[:, -1] for a in arrays]), [b[0] for b in blocks]


def _o_edge(labels: list[str], o_ion: int, edge) -> int:
    if edge is not None:
        if isinstance(edge, int):
            return edge
        if edge in labels:
            return labels.index(edge)
        raise CorelossError(f"edge {edge!r} not in {labels}")
    for k, lab in enumerate(labels):
        if re.match(rf"^(Ion:\s*)?O\s+{o_ion}\b", lab):
            return k
    if len(labels) == 1:
        return 0
    raise CorelossError(f"no O {o_ion} edge among {labels}; pass edge=")


def castep_site_result(castep_path, core_edge_path, o_ion: int, site_index: int | None = None,
                       structure=None, edge=None, excitation_energy: float | None = None,
                       shell_tolerance: float = 1.2) -> SiteResult:
    """One O site from CASTEP output: Mulliken charge, BOP and the OptaDOS O K edge.

    o_ion: CASTEP's number of the O (``O 3`` -> 3). site_index: index in ``structure`` (default:
    position in the ``Cell Contents`` list). BOP: sum of the O's bond populations to its first-shell
    cations: those of :func:`coreloss.sites.first_shell` when ``structure`` is given (matched by
    length, 0.01 Å), else cations within ``shell_tolerance`` x the shortest O-cation bond.
    excitation_energy (eV): CASTEP prints none; pass your Delta-SCF value or leave NaN.
    """
    mull = [r for r in read_mulliken(castep_path) if r["species"] == "O" and r["ion"] == o_ion]
    if not mull:
        raise CorelossError(f"{castep_path}: no Mulliken row for O {o_ion}")
    if site_index is None:
        ions = read_ions(castep_path)
        site_index = next((k for k, (sp, n, _) in enumerate(ions) if sp == "O" and n == o_ion), None)
        if site_index is None:
            raise CorelossError(f"{castep_path}: O {o_ion} is not in the ion list")
    bonds = []
    for b in read_bond_populations(castep_path):
        if (b["species1"], b["ion1"]) == ("O", o_ion) and b["species2"] != "O":
            bonds.append(b)
        elif (b["species2"], b["ion2"]) == ("O", o_ion) and b["species1"] != "O":
            bonds.append(b)
    if not bonds:
        raise CorelossError(f"{castep_path}: no O {o_ion}-cation bond populations listed")
    if structure is not None:
        from coreloss.sites import first_shell

        shell = list(first_shell(structure, site_index))
        chosen = []
        for _, d in shell:
            cand = [b for b in bonds if abs(b["length"] - d) < 0.01 and b not in chosen]
            if not cand:
                raise CorelossError(f"{castep_path}: no listed bond of O {o_ion} at {d:.3f} Å "
                                    "(raise POPN_BOND_CUTOFF or check the structure)")
            chosen.append(cand[0])
    else:
        dmin = min(b["length"] for b in bonds)
        chosen = [b for b in bonds if b["length"] <= shell_tolerance * dmin]
    energy, inten, labels = read_core_edge(core_edge_path)
    k = _o_edge(labels, o_ion, edge)
    y = inten[k]
    prov = {"engine": "castep", "engine_version": "CASTEP/OptaDOS (read from files)",
            "parameters": {"castep": str(castep_path), "core_edge": str(core_edge_path),
                           "edge": labels[k], "o_ion": o_ion,
                           "first_shell_rule": "coreloss.sites.first_shell" if structure is not None
                           else f"<= {shell_tolerance} x shortest O-cation bond"},
            "first_shell_bonds": [(b["species2"] if b["species1"] == "O" else b["species1"],
                                   b["length"], b["population"]) for b in chosen],
            "units": {"energy": "eV", "mulliken_charge": "e", "bop": "e"}}
    return SiteResult(int(site_index), energy, y, onset_energy(energy, y),
                      {"mulliken_charge": float(mull[0]["charge"]),
                       "bop": float(sum(b["population"] for b in chosen)),
                       "excitation_energy": float("nan") if excitation_energy is None
                       else float(excitation_energy)}, prov)
