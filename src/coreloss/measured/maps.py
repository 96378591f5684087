"""Property maps (spectrum images) and profiles (line scans) from a :class:`MeasuredPrediction`.

:func:`save_maps` writes, for each of the six properties, a PNG (value map + uncertainty map, OOD
pixels hatched, failed pixels grey; or a profile with its +-1 sigma band for line scans), an overview
PNG, an OOD/failure mask PNG, and three HyperSpy signals with the spatial axes of the input:
``{stem}_properties.hspy`` (means), ``{stem}_uncertainty.hspy`` (1 sigma) and ``{stem}_ood.hspy``
(OOD score, OOD flag, failed flag), plus ``{stem}_failed_pixels.json`` (reason per failed pixel).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from coreloss.errors import CorelossError
from coreloss.measured.predict import MeasuredPrediction, check_writable
from coreloss.measured.readers import MeasuredSpectra


def property_maps(res: MeasuredPrediction) -> dict[str, np.ndarray]:
    """``{name: map}``, ``{name_std: map}``, ``ood_score``, ``ood``, ``failed`` in the navigation shape."""
    out = {}
    for j, name in enumerate(res.label_names):
        out[name] = res.as_map(res.mean[:, j])
        out[f"{name}_std"] = res.as_map(res.std[:, j])
    out["ood_score"] = res.as_map(res.ood_score)
    out["ood"] = res.as_map(res.ood)
    out["failed"] = res.as_map(~res.valid)
    return out


_OTHER = ("overview.png", "ood_mask.png", "properties.hspy", "uncertainty.hspy", "ood.hspy",
          "failed_pixels.json")


def map_paths(out_dir, stem: str, label_names) -> list[Path]:
    """Every file :func:`save_maps` writes: one PNG per property, then the ``_OTHER`` files."""
    out_dir = Path(out_dir)
    return [out_dir / f"{stem}_{n}.png" for n in label_names] + [out_dir / f"{stem}_{s}" for s in _OTHER]


def _axes(measured: MeasuredSpectra) -> list[dict]:
    """HyperSpy axis dicts of the spatial axes (non-uniform axes keep their positions)."""
    out = []
    for a in measured.nav_axes:
        d = {"name": a.name, "units": a.units, "navigate": False}
        if a.values is not None:
            d["axis"] = np.asarray(a.values, float)
        else:
            d.update(size=a.size, scale=a.scale, offset=a.offset)
        out.append(d)
    return out


def _signal(stack: np.ndarray, names: list[str], measured: MeasuredSpectra, title: str, extra: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs
        axes = [{"name": "quantity", "size": len(names), "navigate": True}] + _axes(measured)
        cls = hs.signals.Signal2D if len(measured.nav_axes) == 2 else hs.signals.Signal1D
        sig = cls(np.asarray(stack, np.float32), axes=axes)
        sig.metadata.General.title = title
        sig.original_metadata.add_dictionary({"coreloss": {"quantities": names, **extra}})
        return sig


def _extent(measured: MeasuredSpectra):
    (ay, ax) = measured.nav_axes
    px, py = ax.positions, ay.positions
    return [px[0] - ax.scale / 2, px[-1] + ax.scale / 2, py[-1] + ay.scale / 2, py[0] - ay.scale / 2]


def _label(a) -> str:
    return f"{a.name} ({a.units})" if a.units else a.name


def _plot_image(ax, img, measured, mask_ood, mask_failed, cmap, title, fig):
    img = np.where(mask_failed, np.nan, img)
    cm = __import__("matplotlib").colormaps[cmap].with_extremes(bad="0.6")
    finite = img[np.isfinite(img)]
    vmin, vmax = (np.percentile(finite, [1, 99]) if finite.size else (0, 1))
    im = ax.imshow(img, cmap=cm, extent=_extent(measured), vmin=vmin, vmax=vmax, interpolation="nearest")
    if mask_ood.any() and (~mask_ood).any():
        ny, nx = img.shape
        ext = _extent(measured)
        xs = np.linspace(ext[0], ext[1], nx + 1)
        ys = np.linspace(ext[3], ext[2], ny + 1)
        xc, yc = (xs[1:] + xs[:-1]) / 2, (ys[1:] + ys[:-1]) / 2
        ax.contourf(xc, yc, mask_ood.astype(float), levels=[0.5, 1.5], hatches=["///"], colors="none")
    elif mask_ood.all():
        title += " (all OOD)"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(_label(measured.nav_axes[1]), fontsize=8)
    ax.set_ylabel(_label(measured.nav_axes[0]), fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.85)


def _plot_profile(ax, x, m, s, ood, failed, title, xlabel):
    m = np.where(failed, np.nan, m)
    ax.plot(x, m, "-o", ms=3, color="C0")
    ax.fill_between(x, m - s, m + s, color="C0", alpha=0.25, label="±1σ")
    if ood.any():
        ax.plot(x[ood & ~failed], m[ood & ~failed], "x", color="C3", label="OOD")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)


def save_maps(res: MeasuredPrediction, measured: MeasuredSpectra, out_dir, stem: str,
              overwrite: bool = False) -> list[Path]:
    """Write property maps / profiles, uncertainty, OOD mask (PNG + .hspy); return the paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ndim = len(measured.nav_axes)
    if ndim not in (1, 2):
        raise CorelossError(f"{measured.source}: `map` needs a line scan or a 2-D spectrum image, got "
                            f"navigation shape {measured.nav_shape or '()'} (use `coreloss predict`)")
    out_dir = Path(out_dir)
    names, units = res.label_names, res.label_units
    paths = map_paths(out_dir, stem, names)
    pngs, other = paths[:len(names)], paths[len(names):]
    check_writable(paths, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    maps = property_maps(res)
    ood, failed = maps["ood"], maps["failed"]
    written = []
    if ndim == 2:
        for n, u, path in zip(names, units, pngs):
            fig, axs = plt.subplots(1, 2, figsize=(9, 3.8))
            _plot_image(axs[0], maps[n], measured, ood & ~failed, failed, "viridis", f"{n} ({u})", fig)
            _plot_image(axs[1], maps[f"{n}_std"], measured, ood & ~failed, failed, "magma",
                        f"{n} uncertainty 1σ ({u})", fig)
            fig.tight_layout()
            fig.savefig(path, dpi=110)
            plt.close(fig)
        fig, axs = plt.subplots(2, 3, figsize=(12, 7))
        for ax, n, u in zip(axs.flat, names, units):
            _plot_image(ax, maps[n], measured, ood & ~failed, failed, "viridis", f"{n} ({u})", fig)
    else:
        a = measured.nav_axes[0]
        x = a.positions
        for n, u, path in zip(names, units, pngs):
            fig, ax = plt.subplots(figsize=(6, 3.5))
            _plot_profile(ax, x, maps[n], maps[f"{n}_std"], ood, failed, f"{n} ({u})", _label(a))
            ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(path, dpi=110)
            plt.close(fig)
        fig, axs = plt.subplots(2, 3, figsize=(12, 6))
        for ax, n, u in zip(axs.flat, names, units):
            _plot_profile(ax, x, maps[n], maps[f"{n}_std"], ood, failed, f"{n} ({u})", _label(a))
    fig.suptitle(f"{Path(measured.source).name}: hatched/x = out of distribution, grey = failed", fontsize=9)
    fig.tight_layout()
    fig.savefig(other[0], dpi=110)
    plt.close(fig)
    written += pngs + [other[0]]

    fig, axs = plt.subplots(1, 2, figsize=(9, 3.8))
    cat = np.where(failed, 2, np.where(ood, 1, 0)).astype(float)
    if ndim == 2:
        _plot_image(axs[0], maps["ood_score"], measured, np.zeros_like(ood), failed, "cividis",
                    "OOD score", fig)
        cm = matplotlib.colors.ListedColormap(["#4daf4a", "#e41a1c", "0.6"])
        axs[1].imshow(cat, cmap=cm, vmin=-0.5, vmax=2.5, extent=_extent(measured), interpolation="nearest")
        axs[1].set_title("green: ok, red: OOD, grey: failed", fontsize=9)
    else:
        axs[0].plot(x, maps["ood_score"], "-o", ms=3)
        thr = res.provenance.get("ood_threshold")
        if thr is not None:
            axs[0].axhline(thr, color="C3", ls="--", label="threshold")
            axs[0].legend(fontsize=7)
        axs[0].set_yscale("log")
        axs[0].set_title("OOD score", fontsize=9)
        axs[1].scatter(x, cat, c=cat, cmap=matplotlib.colors.ListedColormap(["#4daf4a", "#e41a1c", "0.6"]),
                       vmin=-0.5, vmax=2.5)
        axs[1].set_yticks([0, 1, 2], ["ok", "OOD", "failed"])
        for ax in axs:
            ax.set_xlabel(_label(a), fontsize=8)
    fig.tight_layout()
    fig.savefig(other[1], dpi=110)
    plt.close(fig)
    written.append(other[1])

    extra = {"units": dict(zip(names, units)), "provenance": json.dumps(res.provenance, default=str)}
    sigs = [(np.stack([maps[n] for n in names]), names, "O-site properties", other[2]),
            (np.stack([maps[f"{n}_std"] for n in names]), [f"{n}_std" for n in names],
             "O-site property uncertainty (1 sigma)", other[3]),
            (np.stack([maps["ood_score"], ood.astype(float), failed.astype(float)]),
             ["ood_score", "ood", "failed"], "out-of-distribution score and masks", other[4])]
    for stack, qnames, title, path in sigs:
        _signal(stack, qnames, measured, title, extra).save(str(path), overwrite=True)
        written.append(path)
    bad = np.nonzero(~res.valid)[0]
    counts: dict[str, int] = {}
    for r in res.reasons[bad]:
        counts[r] = counts.get(r, 0) + 1
    other[5].write_text(json.dumps({"n_failed": int(bad.size), "by_reason": counts,
                                    "pixels": [{"index": [int(v) for v in np.unravel_index(i, res.nav_shape)],
                                                "reason": res.reasons[i]} for i in bad[:10000]]}, indent=1))
    written.append(other[5])
    return written
