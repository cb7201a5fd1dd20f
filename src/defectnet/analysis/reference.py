"""What the input spectra are checked against and put on: the host's simulated pristine spectrum
(computed with the MLIP, cached on disk) and the model's energy grid."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np

from defectnet.analysis.config import PredictConfig
from defectnet.elements import atomic_fractions
from defectnet.errors import DefectnetError
from defectnet.spectrum import Spectrum

#: Computed pristine spectra of this process, by their cache key, while the disk cache is off.
_COMPUTED: dict[str, Spectrum] = {}


def resolve_host(host) -> tuple:
    """(atoms, name, composition {element: atomic fraction}) of a library name, file or Atoms."""
    from defectnet.simulate import resolve_host as resolve

    atoms, name = resolve(host)
    return atoms, name, atomic_fractions(atoms.get_chemical_symbols())


def model_grid(model):
    """The :class:`~defectnet.grid.EnergyGrid` a trained model reads (from its metadata)."""
    from defectnet.grid import EnergyGrid

    g = model.meta.get("grid")
    if g is None:
        raise DefectnetError("the model does not record its energy grid; retrain it with this defectnet")
    return EnergyGrid.from_dict(g if isinstance(g, dict) else json.loads(g))


def training_broadening(model) -> dict:
    """The broadening of the model's training spectra: ``{"fwhm_mev": …}`` or ``{"resolution": …}``
    (1 meV FWHM when the model does not record it)."""
    b = (model.meta.get("data") or {}).get("broadening") or {}
    if isinstance(b, str):
        b = json.loads(b) if b else {}
    return b or {"fwhm_mev": 1.0}


def broadening_text(config: PredictConfig, model) -> str:
    """How a computed pristine spectrum is broadened, in words for a note."""
    if config.resolution:
        return f"resolution {config.resolution}"
    if config.fwhm_mev is not None:
        return f"FWHM {config.fwhm_mev:g} meV"
    return f"training broadening {training_broadening(model)}"


def cache_dir() -> Path | None:
    """Where computed pristine spectra are cached: ``$DEFECTNET_CACHE`` or ``~/.cache/defectnet``;
    None when ``DEFECTNET_CACHE=off`` (then they are kept for the running process only)."""
    from defectnet.phonons import cache

    return cache.cache_dir()


def computed_pristine(atoms, name: str, config: PredictConfig, model, grid, *, progress: bool) -> Spectrum:
    """The host's q-mesh PDoS (per meV, with partials) from the MLIP on ``grid``, broadened as ``config``
    says or as the model's training data were; cached on disk by structure and settings."""
    from defectnet.phonons.host import HostSettings, compute_pristine

    b = training_broadening(model)
    resolution = config.resolution or (None if config.fwhm_mev is not None else b.get("resolution"))
    fwhm = config.fwhm_mev if config.fwhm_mev is not None else b.get("fwhm_mev") or 1.0
    settings = HostSettings(potential=config.potential)
    key = hashlib.sha256(json.dumps({
        "numbers": atoms.numbers.tolist(), "cell": np.round(atoms.cell.array, 6).tolist(),
        "positions": np.round(atoms.get_scaled_positions(), 6).tolist(), "settings": repr(settings),
        "grid": grid.grid_id, "resolution": resolution, "fwhm": fwhm}, sort_keys=True).encode()).hexdigest()[:20]
    root = cache_dir()
    if root is None and key in _COMPUTED:
        return _COMPUTED[key]
    path = root / "pristine" / f"{key}.json" if root is not None else None
    if path is not None and path.is_file():
        try:
            return Spectrum.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, DefectnetError):
            pass  # a torn or unreadable cache file: recompute
    ph = compute_pristine(atoms, settings, grid=grid, resolution=resolution, fwhm_mev=fwhm, progress=progress)
    s = Spectrum(ph.spectrum.edges_mev, ph.spectrum.values, ph.spectrum.partials, kind="total",
                 meta={"source": f"{name} computed with {config.potential}"})
    if path is None:
        return _COMPUTED.setdefault(key, s)
    _cache(s, path)
    return s


def _cache(s: Spectrum, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(s.to_dict()))
        tmp.replace(path)  # atomic: a crash never leaves a half-written cache entry
    except OSError as exc:  # the answer does not need the cache: say so (a note) and go on
        warnings.warn(f"the computed pristine spectrum was not cached in {path.parent} ({exc.strerror or exc}); "
                      "set DEFECTNET_CACHE to a writable directory to keep it", stacklevel=3)
