"""Deep ensembles: several networks of one recipe (other seeds, other validation hosts) answering as one.

Each member's answer per candidate is a hurdle distribution, (1 − p) δ(0) + p LogNormal(ln c;
m, s), calibrated on its own validation hosts. The ensemble's answer is the equal-weight mixture
of the members' distributions: presence is the mean p, the concentration the mixture's median
and ±1σ half its 15.9–84.1 % range, so the members' disagreement widens the error bar. Seeds
disagree most where the inputs are least like their training (a basis that does not match its
spectrum), which is where one network's confident answer is least to be trusted.

An ensemble is saved and loaded as one checkpoint (``model_config.ensemble`` = number of
members, their weights under ``members.<i>.``); it is built from trained members by
:func:`combine`, never trained as one.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

from defectnet.errors import DefectnetError
from defectnet.model.network import LOG_C_CENTER, LOG_C_SCALE, ModelConfig, SpectralModel, scatter_candidates

#: Bisection steps of the mixture quantile: ln c is bracketed in [ln 1e-9, 0], 2⁻⁴⁰ of that range.
_STEPS = 40
_LN_MIN = -20.7  # ln 1e-9: below any concentration the data holds


def mixture_quantile(prob, loc, s, level: float):
    """Quantile ``level`` of the equal-weight mixture over members (dim 0) of hurdle log-normals.

    Parameters
    ----------
    prob, loc, s : tensor, shape (M, ...)
        Per member: presence probability, mean and standard deviation of ln c (c an atomic fraction).
    level : float
        In (0, 1).

    Returns
    -------
    tensor, shape (...)
        Atomic fraction; 0 where the mixture's mass at 0 is ≥ ``level``, capped at 1 (as each member is).
    """
    at_zero = (1 - prob).mean(0)

    def cdf(t):  # mixture CDF at ln c = t, t (...)
        return at_zero + (prob * torch.special.ndtr((t[None] - loc) / s)).mean(0)

    lo = torch.full_like(at_zero, _LN_MIN)
    hi = torch.zeros_like(at_zero)
    for _ in range(_STEPS):
        mid = 0.5 * (lo + hi)
        below = cdf(mid) < level
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    x = torch.exp(0.5 * (lo + hi))
    return torch.where(at_zero >= level, torch.zeros_like(x), x)


class Ensemble(SpectralModel):
    """Members of one architecture and size answering as the mixture of their answers.

    Parameters
    ----------
    config : ModelConfig
        The members' config with ``ensemble`` = M ≥ 2.
    grid, vocabulary, host_elements
        As every member's.
    build : callable
        ``build(member_config, grid, vocabulary, host_elements)`` -> one member (the architecture registry's).
    """

    def __init__(self, config: ModelConfig, grid, vocabulary, host_elements, build):
        super().__init__(config, grid, vocabulary, host_elements)
        if config.ensemble < 2:
            raise DefectnetError(f"an ensemble needs ≥ 2 members, the config says {config.ensemble}")
        one = ModelConfig.from_dict({**config.to_dict(), "ensemble": 1})
        self.members = nn.ModuleList(build(one, grid, vocabulary, host_elements) for _ in range(config.ensemble))

    def forward(self, *inputs):
        outs = [m(*inputs) for m in self.members]
        order, valid = outs[0]["order"], outs[0]["valid"]
        prob, s = (torch.stack(x) for x in zip(*(m.calibrated(o["logit"], o["log_sigma"])
                                                 for o, m in zip(outs, self.members))))
        loc = torch.stack([o["mu"] for o in outs]) * LOG_C_SCALE + LOG_C_CENTER
        values = {"presence": prob.mean(0), "concentration": mixture_quantile(prob, loc, s, 0.5),
                  "sigma": 0.5 * (mixture_quantile(prob, loc, s, 0.8413) - mixture_quantile(prob, loc, s, 0.1587))}
        return {"order": order, "valid": valid, **scatter_candidates(values, order, valid, *inputs[3].shape)}

    def loss(self, out, targets, candidates):
        raise DefectnetError("an ensemble is not trained as one: train its members and combine them "
                             "(defectnet.model.ensemble.combine)")


def _union(lists) -> list:
    return sorted(set().union(*map(set, lists)))


def combine(models) -> Ensemble:
    """One :class:`Ensemble` of trained ``models`` (same architecture, size, grid, vocabulary, spectrum mode).

    Its ``meta`` keeps each member's record (``data.members``, ``metrics.members``); a host any
    member trained or validated on counts as seen (``data.train_hosts``), test hosts are those
    every member held out, and a basis must match what every member's training bases matched.
    """
    from defectnet.grid import EnergyGrid

    models = list(models)
    if len(models) < 2:
        raise DefectnetError(f"an ensemble needs ≥ 2 trained models, got {len(models)}")
    first = models[0]
    # a conditioned network's ±1σ is calibrated on validation hosts held out whole, so one scale serves
    # seen and unseen hosts alike; a plain network keeps two (host_calibration), which members here would lose
    if getattr(first.config, "ensemble", 1) != 1 or first.config.arch != "conditioned":
        raise DefectnetError(f"members must be single conditioned networks, got a {first.config.arch} "
                             f"{'ensemble' if getattr(first.config, 'ensemble', 1) != 1 else 'network'}")
    same = {"model config": lambda m: {**m.config.to_dict(), "ensemble": 1}, "vocabulary": lambda m: m.vocabulary,
            "host elements": lambda m: m.host_elements, "grid": lambda m: m.meta.get("grid_id"),
            "spectrum mode": lambda m: m.meta.get("spectrum_mode"),
            "basis kind": lambda m: {k: (m.meta.get("basis") or {}).get(k) for k in ("kind", "grid_id", "n_knots")},
            "data's simulation settings": lambda m: {k: (m.meta.get("data") or {}).get(k)
                                                     for k in ("broadening", "potential", "tier")}}
    for what, key in same.items():
        odd = [i for i, m in enumerate(models) if key(m) != key(first)]
        if odd:
            raise DefectnetError(f"member {odd[0]} has another {what} than member 0; an ensemble's members differ "
                                 "only in their weights")
    config = ModelConfig.from_dict({**first.config.to_dict(), "ensemble": len(models)})
    ens = Ensemble(config, EnergyGrid.from_dict(first.meta["grid"]), first.vocabulary, first.host_elements, type(first))
    for member, model in zip(ens.members, models):
        member.load_state_dict(model.state_dict())
    datas = [m.meta.get("data") or {} for m in models]
    seen = _union(d.get("train_hosts", []) + d.get("val_hosts", []) for d in datas)
    comps = {json.dumps(c, sort_keys=True) for d in datas for c in d.get("train_compositions") or []}
    test = sorted(set.intersection(*(set(d.get("test_hosts", [])) for d in datas)))
    histories = [(m.meta.get("metrics") or {}).get("history") for m in models]  # training cost, summed
    basis = dict(first.meta.get("basis") or {})
    if basis:
        sims = {tuple(sorted(s.items())) for m in models for s in (m.meta.get("basis") or {}).get("simulation", [])}
        basis["simulation"] = [dict(s) for s in sorted(sims)]
    ens.meta = {k: first.meta.get(k) for k in ("grid", "grid_id", "spectrum_mode", "code_version")}
    # each member answers with its own scale, set on its held-out hosts; this records their mean
    ens.sigma_scale_unseen = float(np.mean([float(m.sigma_scale) for m in models]))
    kept = {k: datas[0][k] for k in ("broadening", "potential", "tier") if datas[0].get(k) is not None}
    ens.meta |= {"basis": basis, "train_config": {"members": [m.meta.get("train_config") for m in models]},
                 "data": {**kept, "source": datas[0].get("source"), "bases": datas[0].get("bases"),
                          "train_hosts": seen, "val_hosts": [], "test_hosts": test,
                          "calib_hosts": _union(d.get("calib_hosts", []) for d in datas),
                          "train_compositions": [json.loads(c) for c in sorted(comps)],
                          "members": [{k: v for k, v in d.items() if k != "train_compositions"} for d in datas]},
                 "metrics": {"history": {k: sum((h or {}).get(k) or 0 for h in histories) for k in ("epochs_run", "seconds")},
                             "members": [m.meta.get("metrics") for m in models]}}
    return ens.eval()
