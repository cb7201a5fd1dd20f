"""A 2-D map of a dataset's defect signatures (``defectnet dataset umap``): the analogue of the
published Fig. 2d, coloured by dopant mass, total concentration, number of dopants or host."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from defectnet.data.export import training_arrays
from defectnet.errors import DefectnetError


def _dopant_mass(targets: np.ndarray) -> np.ndarray:
    """Concentration-weighted mean dopant mass (amu) per sample."""
    from defectnet.elements import DOPANTS, mass_amu

    m = np.array([mass_amu(el) for el in DOPANTS])
    return (targets @ m) / np.maximum(targets.sum(axis=1), 1e-12)


#: Colourings of the UMAP plot: name -> (label, f(arrays) -> per-sample values, categorical?).
COLORINGS = {
    "dopant-mass": ("mean dopant mass (amu, concentration-weighted)", lambda a: _dopant_mass(a["targets"]), False),
    "total-concentration": ("total dopant concentration (at. %)", lambda a: 100 * a["targets"].sum(axis=1), False),
    "n-dopants": ("number of dopant species", lambda a: a["n_dopants"].astype(float), False),
    "host": ("host", lambda a: a["host_id"], True),
}


def umap_plot(store_path, out, *, color: str = "dopant-mass", spectrum: str = "pdos", n_neighbors: int = 15,
              min_dist: float = 0.1, seed: int = 0, max_samples: int | None = None, csv=None) -> dict:
    """2-D UMAP of the defect signatures Δ = doped − pristine, coloured per sample (PNG).

    The analogue of the published Fig. 2d. Each sample's Δ (on the grid, per meV) is
    scaled by the bin widths so that it is a per-bin probability change (bins of unequal
    width weigh by their area), then embedded with umap-learn (seeded).

    Parameters
    ----------
    color : str
        A key of :data:`COLORINGS`.
    spectrum : {'pdos', 'gpdos'}
        Plain or neutron-weighted spectra.
    max_samples : int, optional
        Embed a seeded random subset.
    csv : path, optional
        Also write sample_id, host, x, y and the colour value.
    """
    try:
        import umap
    except ImportError:
        raise DefectnetError("'dataset umap' needs umap-learn; install it with 'pip install umap-learn'") from None
    if color not in COLORINGS:
        raise DefectnetError(f"unknown colouring {color!r}; expected one of {', '.join(COLORINGS)}")
    if spectrum not in ("pdos", "gpdos"):
        raise DefectnetError(f"spectrum must be 'pdos' or 'gpdos', got {spectrum!r}")
    from defectnet.data.store import Store
    from defectnet.grid import EnergyGrid

    with Store(store_path, "r") as store:
        a, attrs = training_arrays(store)
    n = len(a["doped"])
    if n < 4:
        raise DefectnetError(f"UMAP needs at least 4 successful samples; the store has {n}")
    idx = np.arange(n)
    if max_samples is not None and n > max_samples:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))
    suffix = "" if spectrum == "pdos" else "_gpdos"
    widths = EnergyGrid.from_dict(json.loads(attrs["grid"])).widths
    X = (a["doped" + suffix][idx] - a["pristine" + suffix][idx]) * widths
    label, fn, categorical = COLORINGS[color]
    values = np.asarray(fn(a))[idx]
    reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(idx) - 1), min_dist=min_dist, random_state=seed,
                        n_components=2)
    emb = reducer.fit_transform(X)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    if categorical:
        names = a["host_names"]
        cmap = plt.get_cmap("tab20")
        for k in np.unique(values):
            sel = values == k
            ax.scatter(emb[sel, 0], emb[sel, 1], s=8, color=cmap(int(k) % 20), label=names[int(k)])
        if len(np.unique(values)) <= 20:
            ax.legend(markerscale=2, fontsize=7, frameon=False)
    else:
        sc = ax.scatter(emb[:, 0], emb[:, 1], c=values, s=8, cmap="viridis")
        fig.colorbar(sc, ax=ax, label=label)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_title(f"defect signatures ({'GPDoS' if suffix else 'PDoS'}, doped − pristine), {len(idx)} samples")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    if csv is not None:
        host_names = a["host_names"]
        lines = ["sample_id,host,x,y,value"] + [
            f"{a['sample_id'][i]},{host_names[a['host_id'][i]]},{x:.6g},{y:.6g},{v:.6g}"
            for i, (x, y), v in zip(idx, emb, values)]
        Path(csv).write_text("\n".join(lines) + "\n")
    return {"path": str(out), "n_samples": len(idx), "color": color}
