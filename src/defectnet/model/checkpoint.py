"""Model checkpoints: save, validate, load (``torch.load(weights_only=True)`` only).

A checkpoint is a dict of plain data and tensors that rebuilds a model alone::

    format, format_version, arch, model_config, state_dict,
    grid (EnergyGrid.to_dict()), grid_id, vocabulary, host_elements, spectrum_mode,
    normalisation, metrics, train_config, data, code_version, torch_version, created

``load_model()`` without a path loads the model shipped in ``defectnet/pretrained/``.
"""

from __future__ import annotations

import json
import time
import zipfile
from importlib import resources
from pathlib import Path

import torch

from defectnet.errors import DefectnetError
from defectnet.grid import EnergyGrid

FORMAT = "defectnet-model"
FORMAT_VERSION = 1
PRETRAINED_FILE = "defectnet.pt"
_REQUIRED = ("format", "format_version", "arch", "model_config", "state_dict", "grid", "grid_id", "vocabulary",
             "host_elements", "spectrum_mode")


def _plain(obj):
    """JSON-safe copy (numpy scalars → Python), so the payload unpickles with weights_only=True."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else o.tolist()))


def checkpoint_payload(model, *, metrics=None, train_config=None, data=None) -> dict:
    """The checkpoint dict of ``model`` (a :class:`~defectnet.model.network.SpectralModel` with ``meta``)."""
    import defectnet
    from defectnet.model.network import LOG_C_CENTER, LOG_C_SCALE

    meta = model.meta
    if "grid" not in meta or "spectrum_mode" not in meta:
        raise DefectnetError("model.meta needs 'grid' and 'spectrum_mode' before it can be saved")
    sigma_scale = float(model.sigma_scale) if hasattr(model, "sigma_scale") else None
    logit_scale = float(model.logit_scale) if hasattr(model, "logit_scale") else None
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": model.config.arch,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "grid": _plain(meta["grid"]),
        "grid_id": EnergyGrid.from_dict(meta["grid"]).grid_id,
        "vocabulary": list(model.vocabulary),
        "host_elements": list(model.host_elements),
        "spectrum_mode": meta["spectrum_mode"],
        "normalisation": {
            "inputs": "per-bin probability (values × bin widths, unit sum) × G",
            "target": ("ln c standardised: (ln c − center) / scale" if model.config.arch == "defectnet"
                       else f"c × {model.config.paper_target_scale}"),
            "log_c_center": LOG_C_CENTER, "log_c_scale": LOG_C_SCALE, "sigma_scale": sigma_scale,
            "presence_logit_scale": logit_scale,
            # σ factor for hosts never seen in training (calibrated on held-out hosts), or None
            "sigma_scale_unseen": _plain(getattr(model, "sigma_scale_unseen", None)),
        },
        "metrics": _plain(metrics or meta.get("metrics", {})),
        "train_config": _plain(train_config or meta.get("train_config", {})),
        "data": _plain(data or meta.get("data", {})),
        "code_version": defectnet.__version__,
        "torch_version": str(torch.__version__),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def save_checkpoint(model, path, **kw) -> Path:
    """Write ``model`` (and ``metrics``, ``train_config``, ``data`` keywords) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(checkpoint_payload(model, **kw), tmp)
    tmp.replace(path)
    return path


def read_checkpoint(path) -> dict:
    """Load and validate a checkpoint dict; refuses anything that needs more than ``weights_only``."""
    path = Path(path)
    if not path.is_file():
        raise DefectnetError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise DefectnetError(f"{path} is not a readable torch checkpoint (not a torch.save zip archive)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the weights-only unpickler raises UnpicklingError, KeyError, ... on foreign objects
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise DefectnetError(f"refusing to load {path}: it does not load with weights_only=True (it holds objects "
                             f"other than tensors and plain data, which could run code, or is damaged: {first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DefectnetError(f"{path} is not a defectnet model checkpoint")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise DefectnetError(f"{path}: checkpoint format version {ckpt.get('format_version')}, "
                             f"this defectnet reads {FORMAT_VERSION}")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise DefectnetError(f"{path}: checkpoint lacks {missing}")
    return ckpt


def check_compatible(ckpt: dict, *, grid=None, vocabulary=None, host_elements=None, source: str = "checkpoint"):
    """Raise if the checkpoint was made for another grid, vocabulary or composition order."""
    if grid is not None:
        grid = grid if isinstance(grid, EnergyGrid) else EnergyGrid.from_dict(grid)
        if grid.grid_id != ckpt["grid_id"]:
            raise DefectnetError(f"{source} was made for energy grid {ckpt['grid_id']}, but the spectra are on "
                                 f"{grid.grid_id}; resample them onto the model's grid "
                                 f"(Spectrum.resample) or use a model trained on this grid")
    if vocabulary is not None and tuple(vocabulary) != tuple(ckpt["vocabulary"]):
        a, b = list(ckpt["vocabulary"]), list(vocabulary)
        raise DefectnetError(f"{source} was made for a dopant vocabulary of {len(a)} elements "
                             f"({a[0]}…{a[-1]}), which differs from the {len(b)} elements expected here "
                             f"({b[0] if b else ''}…{b[-1] if b else ''}); retrain for this vocabulary")
    if host_elements is not None and tuple(host_elements) != tuple(ckpt["host_elements"]):
        raise DefectnetError(f"{source} was made for another host-composition order "
                             f"({len(ckpt['host_elements'])} elements); retrain or reorder the composition")


def model_from_checkpoint(ckpt: dict, *, source: str = "checkpoint"):
    """Rebuild the model of a validated checkpoint dict (eval mode, ``meta`` filled)."""
    from defectnet.model.network import ModelConfig, build_model

    config = ModelConfig.from_dict(ckpt["model_config"])
    grid = EnergyGrid.from_dict(ckpt["grid"])
    if grid.grid_id != ckpt["grid_id"]:
        raise DefectnetError(f"{source}: grid_id {ckpt['grid_id']} does not match its grid ({grid.grid_id})")
    if config.n_bins != grid.n_bins or config.n_elements != len(ckpt["vocabulary"]):
        raise DefectnetError(f"{source}: model config does not match its grid / vocabulary")
    model = build_model(config, grid, ckpt["vocabulary"], ckpt["host_elements"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise DefectnetError(f"{source}: weights do not fit the {config.arch} architecture "
                             f"({str(exc).splitlines()[0]})") from None
    model.meta = {k: ckpt.get(k) for k in ("grid", "grid_id", "spectrum_mode", "metrics", "train_config", "data",
                                           "normalisation", "code_version", "created")}
    model.sigma_scale_unseen = (ckpt.get("normalisation") or {}).get("sigma_scale_unseen")
    return model.eval()


def pretrained_path() -> Path:
    """Where the shipped model lives (``defectnet/pretrained/defectnet.pt``), whether or not it exists."""
    return Path(str(resources.files("defectnet"))) / "pretrained" / PRETRAINED_FILE


def load_model(path=None, *, grid=None, vocabulary=None):
    """Load a trained model.

    Parameters
    ----------
    path : str or Path, optional
        A checkpoint written by ``defectnet train``; ``None`` loads the model shipped with
        the package.
    grid : EnergyGrid or dict, optional
        The grid your spectra are on; refused unless it is the model's grid.
    vocabulary : sequence of str, optional
        The dopant vocabulary you expect; refused unless it is the model's.

    Returns
    -------
    SpectralModel
        In eval mode; ``model.predict(pristine, doped, composition, candidates)`` gives
        concentration, uncertainty and presence probability per candidate; ``model.meta``
        holds the grid, spectrum mode, metrics and provenance.
    """
    if path is None:
        path = pretrained_path()
        if not path.is_file():
            raise DefectnetError("no model is shipped with this defectnet yet (defectnet/pretrained/defectnet.pt "
                                 "is missing); train one with `defectnet train` and pass its model.pt path")
    ckpt = read_checkpoint(path)
    check_compatible(ckpt, grid=grid, vocabulary=vocabulary, source=str(path))
    return model_from_checkpoint(ckpt, source=str(path))
