"""Assemble a structure set: read the sources, check, deduplicate, sort by id.

The default SiO2 set = IZA frameworks (zeose) + AFLOW SiO2 prototypes + pyxtal quartz/cristobalite +
AMCSD SiO2 minerals (where the shared minerals folder exists) + CHGNet-generated polymorphs (read from
the embedded default set, or regenerated with ``generate=True``). Where the minerals folder is absent
the AMCSD records of the embedded default set are used. A user folder (``from_dir``) replaces
the default sources and is checked as any oxide.
"""

from __future__ import annotations

import collections
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

from coreloss.errors import CorelossError
from coreloss.structures import sources
from coreloss.structures.checks import check_oxide, check_sio2
from coreloss.structures.dedup import CHGNET_SOURCES, deduplicate, merge_chgnet
from coreloss.structures.record import StructureRecord

GENERATED = "generated-chgnet"


def default_set_path() -> Path:
    """The embedded default SiO2 structure set shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "data" / "default_structures.json.gz"


def _embedded_doc() -> dict:
    path = default_set_path()
    if not path.is_file():
        return {}
    return json.loads(gzip.decompress(path.read_bytes()))


def shipped_chgnet() -> list[StructureRecord]:
    """The CHGNet-derived records (relaxed, under pressure, MD snapshots, amorphous) of the embedded set."""
    return [StructureRecord.from_dict(r) for r in _embedded_doc().get("structures", [])
            if r["source"] in CHGNET_SOURCES]


def chgnet_records(cache_dir: str | Path | None, generate: bool = False, kinds=None,
                   max_seconds: float | None = None, dropped: list | None = None,
                   progress: bool = False) -> list[StructureRecord]:
    """CHGNet-derived records: run the plan of :mod:`.diverse` into ``cache_dir`` (``generate``; resumable),
    or read the finished tasks of ``cache_dir``, or (``cache_dir`` None) the embedded set's."""
    from coreloss.structures import diverse

    if cache_dir is None and not generate:
        return shipped_chgnet()
    if generate:
        parents, zeolites = diverse.default_parents(zeolites=kinds is None or "zeolite" in kinds)
        tasks = diverse.plan(parents, zeolites, tuple(kinds or diverse.KINDS))
        docs = diverse.run(tasks, parents, cache_dir, max_seconds=max_seconds,
                           log=print if progress else (lambda m: None))
    else:
        docs = diverse.read_cache(cache_dir)
    records, failed = diverse.records_from_docs(docs)
    if dropped is not None:
        dropped += failed
    return records


def shipped_generated() -> list[StructureRecord]:
    """All sane CHGNet-generated records cached in the embedded default set (before dedup; empty if the
    set is not built yet)."""
    doc = _embedded_doc()
    rows = doc.get("generated_cache") or [r for r in doc.get("structures", [])
                                          if r["source"] == GENERATED]
    return [StructureRecord.from_dict(r) for r in rows]


@dataclass
class BuildReport:
    """Result of :func:`build_structure_set`.

    records: the kept records, sorted by id; read: records read per source (before checks);
    dropped: ``(id, source, reason)``; duplicates: ``(duplicate_id, kept_id)``; parameters: the inputs.
    """

    records: list[StructureRecord]
    read: dict = field(default_factory=dict)
    dropped: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    parameters: dict = field(default_factory=dict)
    generated: list = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Kept records per source."""
        return dict(sorted(collections.Counter(r.source for r in self.records).items()))

    def summary(self) -> dict:
        """JSON-able summary stored in the set file (``extra``)."""
        return {"parameters": self.parameters, "counts": self.counts(), "read": self.read,
                "dropped": [list(d) for d in self.dropped],
                "duplicates": [list(d) for d in self.duplicates]}


def build_structure_set(max_atoms: int = 150, minerals_dir: str | Path | None = None,
                        use_minerals: bool = True, generate: bool = False, include_generated: bool = True,
                        from_dir: str | Path | None = None, mp: bool = False, workers: int = 2,
                        progress: bool = False, include_chgnet: bool = True,
                        chgnet_cache: str | Path | None = None, chgnet_kinds=None,
                        chgnet_max_seconds: float | None = None) -> BuildReport:
    """Read, check (:func:`check_sio2`, or :func:`check_oxide` for ``from_dir``), deduplicate and sort.

    max_atoms: largest primitive cell kept (atoms); generate: rerun the CHGNet generation (minutes)
    instead of reading the shipped generated structures (and run the CHGNet plan of :mod:`.diverse` into
    ``chgnet_cache``, resumable); include_generated: add generated structures; include_chgnet: add the
    CHGNet-derived realistic structures (from ``chgnet_cache`` when given, else the embedded set).
    The AMCSD minerals are read in place from ``minerals_dir`` (default: ``../shared/data/...`` where it
    exists; never shipped inside the package); ``use_minerals=False`` leaves them out.
    """
    if max_atoms < 1:
        raise CorelossError("--max-atoms must be positive")
    if mp:
        sources.check_mp_available()  # fail before the slow readers
    dropped: list = []
    raw: list[StructureRecord] = []
    minerals = None
    if from_dir is not None:
        raw += sources.read_folder(from_dir, dropped)
    else:
        minerals = sources.find_minerals_dir(minerals_dir) if use_minerals else None
        raw += sources.read_zeose(max_atoms, dropped, progress=progress)
        raw += sources.read_aflow(dropped, max_atoms)
        raw += sources.read_pyxtal(dropped)
        if minerals is not None:
            raw += sources.read_minerals(minerals, dropped)
        if include_generated:
            if generate:
                from coreloss.structures.generate import generate_sio2
                raw += generate_sio2(workers=workers, dropped=dropped, progress=progress)
            else:
                raw += shipped_generated()
    if mp:
        raw += sources.read_materials_project(max_atoms, dropped=dropped)
    derived = []
    if from_dir is None and include_chgnet:
        derived = chgnet_records(chgnet_cache, generate, chgnet_kinds, chgnet_max_seconds, dropped, progress)
    raw += derived
    read = dict(sorted(collections.Counter(r.source for r in raw).items()))
    checked = []
    for rec in raw:
        if len(rec.structure) > max_atoms:
            dropped.append((rec.id, rec.source,
                            f"{sources.TOO_LARGE} {len(rec.structure)} atoms > {max_atoms}"))
            continue
        reasons = check_oxide(rec.structure) if rec.source == "folder" else check_sio2(rec.structure)
        if reasons:
            dropped.append((rec.id, rec.source, "; ".join(reasons)))
        else:
            checked.append(rec)
    ids = collections.Counter(r.id for r in checked)
    clash = sorted(i for i, n in ids.items() if n > 1)
    if clash:
        raise CorelossError(f"duplicate structure ids: {', '.join(clash[:5])} (rename the files)")
    base = [r for r in checked if r.source not in CHGNET_SOURCES]
    unique, duplicates = deduplicate(base)
    unique, dup_chgnet = merge_chgnet(unique, [r for r in checked if r.source in CHGNET_SOURCES],
                                      dict(duplicates))
    duplicates += dup_chgnet
    generated_ok = [r for r in checked if r.source == GENERATED]
    params = {"max_atoms": max_atoms, "generate": generate, "include_generated": include_generated,
              "from_dir": str(from_dir) if from_dir is not None else None, "mp": mp,
              "minerals_dir": str(minerals) if minerals is not None else (
                  "not found" if from_dir is None and use_minerals else None),
              "checks": "oxide" if from_dir is not None else "sio2",
              "chgnet": {"included": bool(from_dir is None and include_chgnet),
                         "cache": str(chgnet_cache) if chgnet_cache is not None else "embedded",
                         "kinds": list(chgnet_kinds) if chgnet_kinds else None}}
    return BuildReport(sorted(unique, key=lambda r: r.id), read, sorted(dropped),
                       sorted(duplicates), params, sorted(generated_ok, key=lambda r: r.id))
