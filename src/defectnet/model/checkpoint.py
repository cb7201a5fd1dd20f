"""Model checkpoints: save, validate, load (``torch.load(weights_only=True)`` only).

A checkpoint is a dict of plain data and tensors that rebuilds a model alone::

    format, format_version, arch, model_config, state_dict,
    grid (EnergyGrid.to_dict()), grid_id, vocabulary, host_elements, spectrum_mode,
    normalisation, metrics, train_config, data, code_version, torch_version, created

and, for ``arch`` 'conditioned', ``basis``: what a signature basis must match for the model to
read it (:func:`basis_requirements`, checked by :func:`check_basis`).

``load_model()`` without a path loads the model shipped in ``defectnet/pretrained/``
(``load_model(arch="conditioned")`` the conditioned one).
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
from defectnet.output import json_default

FORMAT = "defectnet-model"
FORMAT_VERSION = 1
PRETRAINED_FILE = "defectnet.pt"
#: The shipped file of each architecture that has one, in ``defectnet/pretrained/``.
PRETRAINED = {"defectnet": PRETRAINED_FILE, "conditioned": "conditioned.pt"}
#: What a conditioned checkpoint's ``basis`` record holds.
BASIS_KEYS = ("kind", "grid_id", "n_knots", "simulation")
_REQUIRED = ("format", "format_version", "arch", "model_config", "state_dict", "grid", "grid_id", "vocabulary",
             "host_elements", "spectrum_mode")


def _plain(obj):
    """JSON-safe copy (numpy scalars → Python), so the payload unpickles with weights_only=True."""
    return json.loads(json.dumps(obj, default=json_default))


def checkpoint_payload(model, *, metrics=None, train_config=None, data=None) -> dict:
    """The checkpoint dict of ``model`` (a :class:`~defectnet.model.network.SpectralModel` with ``meta``)."""
    import defectnet
    from defectnet.model.network import LOG_C_CENTER, LOG_C_SCALE

    meta = model.meta
    if "grid" not in meta or "spectrum_mode" not in meta:
        raise DefectnetError("model.meta needs 'grid' and 'spectrum_mode' before it can be saved")
    arch = model.config.arch
    if arch == "conditioned" and not set(BASIS_KEYS) <= set(meta.get("basis") or {}):
        raise DefectnetError("a conditioned model needs model.meta['basis'] (what a basis must match: "
                             "checkpoint.basis_requirements) before it can be saved")
    sigma_scale = float(model.sigma_scale) if hasattr(model, "sigma_scale") else None
    logit_scale = float(model.logit_scale) if hasattr(model, "logit_scale") else None
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "grid": _plain(meta["grid"]),
        "grid_id": EnergyGrid.from_dict(meta["grid"]).grid_id,
        "vocabulary": list(model.vocabulary),
        "host_elements": list(model.host_elements),
        "spectrum_mode": meta["spectrum_mode"],
        "normalisation": {
            "inputs": "per-bin probability (values × bin widths, unit sum) × G",
            "target": (f"c × {model.config.paper_target_scale}" if arch == "paper"
                       else "ln c standardised: (ln c − center) / scale"),
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
    if arch == "conditioned":
        payload["basis"] = _plain(meta["basis"])
    return payload


def basis_requirements(bases, grid, kind: str = "gpdos", n_knots: int = 3) -> dict:
    """What a signature basis must match for a conditioned model trained with ``bases`` to read it.

    Parameters
    ----------
    bases : iterable of SignatureBasis
        The bases of the training hosts.
    grid : EnergyGrid
        The model's grid (every basis is on it).
    kind : {'pdos', 'gpdos'}
        Which of a basis' curves the model reads.
    n_knots : int
        Curves per candidate (basis concentrations).

    Returns
    -------
    dict
        ``kind``, ``grid_id``, ``n_knots`` and ``simulation``: the distinct settings the bases were
        simulated with, each ``{"potential", "model", "tier"}`` (None where a basis does not say).
    """
    settings = {json.dumps(_simulation(b), sort_keys=True) for b in bases}
    return {"kind": kind, "grid_id": grid.grid_id, "n_knots": int(n_knots),
            "simulation": [json.loads(s) for s in sorted(settings)]}


def _simulation(basis) -> dict:
    """{potential (canonical name), model, tier} of the simulations behind ``basis``."""
    from defectnet.phonons.potentials import canonical_name, potential_info

    sim = (basis.config or {}).get("simulation") or {}
    name, model = sim.get("potential"), None
    if name:
        try:  # aliases (7net-0, sevennet-0) name one potential
            name, model = canonical_name(name), potential_info(name).model
        except DefectnetError:
            pass  # a potential this defectnet does not know: compared by its name as written
    return {"potential": name, "model": model, "tier": sim.get("tier")}


def check_basis(requirements: dict, basis, source: str = "the basis") -> list[str]:
    """Raise if a conditioned model with ``requirements`` cannot read ``basis``; notes on what differs but reads.

    Another grid, no curves of the kind the model reads, or another number of concentrations
    are refused; a basis simulated with another potential or tier than the training bases is
    read, with a note (its signatures differ by what separates the two simulations).
    """
    req = requirements
    if basis.grid.grid_id != req["grid_id"]:
        raise DefectnetError(f"{source} is on energy grid {basis.grid.grid_id}, the conditioned model reads "
                             f"{req['grid_id']}; make the basis on the model's grid (defectnet basis, default grid)")
    if req["kind"] not in (basis.curves or {}):
        raise DefectnetError(f"{source} holds no {req['kind']} curves, which the conditioned model reads "
                             f"(it has {', '.join(sorted(basis.curves)) or 'none'})")
    n = int(basis.realised.shape[1])
    if n != req["n_knots"]:
        raise DefectnetError(f"{source} has curves at {n} concentrations, the conditioned model reads "
                             f"{req['n_knots']} (defectnet basis --concentrations with {req['n_knots']} values)")
    got = _simulation(basis)
    known = req.get("simulation") or []
    same = [s for s in known if all(s.get(k) == got[k] for k in ("potential", "tier"))]
    if known and not same:
        def text(s):
            return f"{s.get('potential')} ({s.get('model')}), tier {s.get('tier')}"
        return [f"{source} was simulated with {text(got)}, the conditioned model's training bases with "
                f"{'; '.join(text(s) for s in known)}: its signatures differ by what separates the two, "
                "and so may the answer"]
    return []


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
    if ckpt["arch"] == "conditioned" and not set(BASIS_KEYS) <= set(ckpt.get("basis") or {}):
        raise DefectnetError(f"{path}: a conditioned checkpoint without what a basis must match ('basis': "
                             f"{', '.join(BASIS_KEYS)}); re-export it with benchmarks/conditioned.py")
    _canonical_grid_ids(ckpt)
    return ckpt


def _canonical_grid_ids(ckpt: dict) -> None:
    """An older checkpoint's ids of its grid (an integer energy hashed as an int) as ids are now, in place."""
    try:
        grid = EnergyGrid.from_dict(ckpt["grid"])
    except DefectnetError:
        return  # model_from_checkpoint says what is wrong with the grid
    for record in (ckpt, ckpt.get("basis") or {}):
        if record.get("grid_id") != grid.grid_id and grid.is_id(record.get("grid_id")):
            record["grid_id"] = grid.grid_id


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
    from defectnet.model.architectures import build_model
    from defectnet.model.network import ModelConfig

    config = ModelConfig.from_dict(ckpt["model_config"])
    grid = EnergyGrid.from_dict(ckpt["grid"])
    if not grid.is_id(ckpt["grid_id"]):
        raise DefectnetError(f"{source}: grid_id {ckpt['grid_id']} does not match its grid ({grid.grid_id})")
    if config.n_bins != grid.n_bins or config.n_elements != len(ckpt["vocabulary"]):
        raise DefectnetError(f"{source}: model config does not match its grid / vocabulary")
    model = build_model(config, grid, ckpt["vocabulary"], ckpt["host_elements"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:  # torch's message starts with a line that names no key: say which ones
        misfit = _misfit(model.state_dict(), ckpt["state_dict"]) or str(exc).strip().splitlines()[-1].strip()
        raise DefectnetError(f"{source}: weights do not fit the {config.arch} architecture of this defectnet "
                             f"({misfit}); saved by defectnet {ckpt.get('code_version', '?')}: re-export or retrain "
                             "it with this one") from None
    model.meta = {k: ckpt.get(k) for k in ("grid", "grid_id", "spectrum_mode", "metrics", "train_config", "data",
                                           "normalisation", "code_version", "created", "basis")}
    model.sigma_scale_unseen = (ckpt.get("normalisation") or {}).get("sigma_scale_unseen")
    return model.eval()


def _misfit(expected: dict, saved: dict) -> str:
    """What keeps ``saved`` weights from loading into a model with state dict ``expected`` ('' if nothing)."""
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    shapes = [k for k in expected if k in saved and tuple(expected[k].shape) != tuple(saved[k].shape)]
    parts = [f"{what} {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}" for what, keys in
             (("missing", missing), ("unexpected", unexpected), ("other shapes for", shapes)) if keys]
    return "; ".join(parts)


def pretrained_path(arch: str = "defectnet") -> Path:
    """Where the shipped model of ``arch`` lives (``defectnet/pretrained/``), whether or not it exists."""
    if arch not in PRETRAINED:
        raise DefectnetError(f"no {arch} model is shipped with defectnet; shipped are {', '.join(PRETRAINED)}")
    return Path(str(resources.files("defectnet"))) / "pretrained" / PRETRAINED[arch]


def load_model(path=None, *, arch: str | None = None, grid=None, vocabulary=None):
    """Load a trained model.

    Parameters
    ----------
    path : str or Path, optional
        A checkpoint written by ``defectnet train`` or ``benchmarks/conditioned.py``; ``None``
        loads the model of ``arch`` shipped with the package.
    arch : {'defectnet', 'conditioned'}, optional
        Which shipped model (default 'defectnet'); with ``path``, the file must hold this
        architecture.
    grid : EnergyGrid or dict, optional
        The grid your spectra are on; refused unless it is the model's grid.
    vocabulary : sequence of str, optional
        The dopant vocabulary you expect; refused unless it is the model's.

    Returns
    -------
    SpectralModel
        In eval mode; ``model.predict(pristine, doped, composition, candidates)`` gives
        concentration, uncertainty and presence probability per candidate (a conditioned
        model: :func:`~defectnet.model.conditioned_train.predict_with_basis`); ``model.meta``
        holds the grid, spectrum mode, metrics and provenance.
    """
    if path is None:
        path = pretrained_path(arch or "defectnet")
        if not path.is_file():
            how = ("`python benchmarks/conditioned.py` and pass its --model-out path" if arch == "conditioned" else
                   "`defectnet train` and pass its model.pt path")
            what = "conditioned model" if arch == "conditioned" else "model"
            raise DefectnetError(f"no {what} is shipped with this defectnet yet (defectnet/pretrained/{path.name} "
                                 f"is missing); train one with {how}")
    ckpt = read_checkpoint(path)
    if arch is not None and ckpt["arch"] != arch:
        raise DefectnetError(f"{path} holds a {ckpt['arch']} model; a {arch} one is needed here")
    check_compatible(ckpt, grid=grid, vocabulary=vocabulary, source=str(path))
    return model_from_checkpoint(ckpt, source=str(path))
