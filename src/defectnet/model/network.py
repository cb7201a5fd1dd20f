"""DefectNet (ours) and the published reference architecture (PaperNet).

Both models take the raw contract arrays and featurise inside ``forward``, so a checkpoint
holds everything needed to use it::

    pristine (B, G), doped (B, G)   unit-area PDoS on the model's grid (per meV, bin-integrated)
    composition (B, H)              host atomic fractions, order HOST_ELEMENTS
    candidates (B, V) bool          candidate dopants, order of the vocabulary

and return a dict of (B, V) tensors: ``concentration`` (atomic fraction, exactly 0 off the
candidates), ``sigma`` (1σ uncertainty of it), ``presence`` (probability the candidate is
really there). Shapes in comments: B batch, G energy bins, L tokens, K candidates, D width.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from defectnet.elements import DOPANTS, element_features
from defectnet.errors import DefectnetError
from defectnet.settings import Settings

LOG_C_CENTER, LOG_C_SCALE = math.log(0.02), 1.2  # normalised target y = (ln c − center) / scale
Y_MAX = -LOG_C_CENTER / LOG_C_SCALE  # y of c = 1
#: What ``ModelConfig.arch`` may name; the classes are in :data:`defectnet.model.architectures.ARCHITECTURES`
#: (one of them, the conditioned model, builds on this module's DefectNet).
ARCHITECTURE_NAMES = ("defectnet", "paper", "conditioned")


@dataclass(frozen=True)
class ModelConfig(Settings, what="model config"):
    """Hyper-parameters of both architectures (``arch`` picks one; the other's fields are unused).

    Sizes: ``n_bins`` G, ``n_elements`` V (vocabulary), ``n_host_elements`` H (composition).
    """

    arch: str = "defectnet"
    n_bins: int = 640
    n_elements: int = len(DOPANTS)
    n_host_elements: int = 94
    # --- defectnet
    channels: tuple = (32, 48, 64)  # conv widths; every conv halves the length (640 → 80 tokens)
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2  # blocks of (cross-attention to tokens, self-attention among candidates, MLP)
    dropout: float = 0.1
    element_embedding: int = 8  # learned per-dopant embedding width (beside physical features)
    delta_scale: float = 0.02  # Δ channel = asinh(G·Δq / delta_scale)
    beta_nll: float = 0.5  # β of the β-NLL (0 = plain Gaussian NLL)
    l1_weight: float = 0.5  # weight of the L1 loss (in at.%) on the reported concentration
    # ln c of every candidate is offset by ln‖Δq‖₁ + a (a learned): the signature's L1 norm grows
    # linearly with the total concentration, with one slope across hosts (README, "The magnitude cue")
    magnitude_anchor: bool = False
    # --- paper
    paper_channels: tuple = (32, 64, 128)
    paper_heads: int = 8
    paper_hidden: int = 256
    paper_target_scale: float = 10.0
    paper_eps: float = 1e-3
    # --- members answering as one mixture (defectnet.model.ensemble; built from trained models, 1 = one network)
    ensemble: int = 1

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "paper_channels", tuple(self.paper_channels))
        if self.arch not in ARCHITECTURE_NAMES:
            raise DefectnetError(f"unknown architecture {self.arch!r}; expected one of {sorted(ARCHITECTURE_NAMES)}")
        if self.ensemble < 1 or (self.ensemble > 1 and self.arch == "paper"):
            raise DefectnetError(f"ensemble must be ≥ 1 (and 1 for the paper architecture), got {self.ensemble}")
        if self.d_model % self.n_heads or self.paper_channels[-1] % self.paper_heads:
            raise DefectnetError("d_model must be divisible by n_heads (and paper width by paper_heads)")

@cache
def feature_table(symbols: tuple) -> np.ndarray:
    """Physical element descriptors, (len(symbols), 8): Z, ln m, radius, χ, group, period, ln(1+σ/m), block."""
    f = np.stack([element_features(s) for s in symbols]).astype(np.float64)
    f[:, 1], f[:, 6] = np.log(f[:, 1]), np.log1p(f[:, 6])
    return f


class SpectralModel(nn.Module):
    """Shared plumbing: grid buffers, masking and the numpy :meth:`predict` API."""

    def __init__(self, config: ModelConfig, grid, vocabulary=DOPANTS, host_elements=None):
        super().__init__()
        from defectnet.model.dataset import HOST_ELEMENTS

        self.config = config
        self.vocabulary = tuple(vocabulary)
        self.host_elements = tuple(host_elements or HOST_ELEMENTS)
        if grid.n_bins != config.n_bins or len(self.vocabulary) != config.n_elements:
            raise DefectnetError("grid / vocabulary sizes do not match the model config")
        if len(self.host_elements) != config.n_host_elements:
            raise DefectnetError("host-element list does not match the model config")
        self.register_buffer("bin_widths", torch.as_tensor(grid.widths, dtype=torch.float32))  # (G,) meV
        self.register_buffer("bin_centers", torch.as_tensor(grid.centers, dtype=torch.float32))  # (G,) meV
        self.meta: dict = {}  # grid, spectrum_mode, metrics ... (set by training / checkpoint loading)

    def probabilities(self, spectrum):  # (B, G) density per meV -> (B, G) per-bin probability × G (mean 1)
        q = spectrum * self.bin_widths
        return q / q.sum(-1, keepdim=True).clamp_min(1e-12) * q.shape[-1]

    @torch.no_grad()
    def predict(self, pristine, doped, composition, candidates, *, grid=None, batch_size: int = 4096):
        """Concentrations of candidate dopants from spectra on the model's grid.

        Parameters
        ----------
        pristine, doped : array, shape (G,) or (N, G)
            PDoS (or GPDoS, as the model's ``meta['spectrum_mode']``) on the model's grid, per meV.
        composition : dict or array (H,) or (N, H), or list of those
            Host atomic fractions ({"Ga": 0.5, "As": 0.5}, counts are normalised).
        candidates : list of str, or list of lists (one per spectrum)
            Candidate dopant elements (from the vocabulary).
        grid : EnergyGrid, optional
            The grid the spectra are on; refused unless it is the model's grid.

        Returns
        -------
        list of dict (or one dict for 1-D input)
            ``{element: {"concentration": atomic fraction, "uncertainty": 1σ (atomic fraction),
            "presence": probability}}`` per candidate.
        """
        from defectnet.model.dataset import composition_vector

        if self.config.arch == "conditioned":  # its forward needs each candidate's signature curves
            raise DefectnetError("a conditioned model reads each candidate through its signature in the host: use "
                                 "defectnet.model.conditioned_train.predict_with_basis(model, ..., basis)")
        if grid is not None and "grid_id" in self.meta and grid.grid_id != self.meta["grid_id"]:
            raise DefectnetError(f"the spectra are on grid {grid.grid_id}, the model on {self.meta['grid_id']}; "
                                 "resample them onto the model's grid first")
        single = np.ndim(pristine) == 1
        p, d = np.atleast_2d(np.asarray(pristine, np.float32)), np.atleast_2d(np.asarray(doped, np.float32))
        n, g = p.shape
        if p.shape != d.shape or g != self.config.n_bins:
            raise DefectnetError(f"spectra have shapes {p.shape} and {d.shape}; this model needs (N, {self.config.n_bins}) "
                                 f"on grid {self.meta.get('grid_id', '?')} (resample onto it first)")
        comps = [composition] * n if isinstance(composition, dict) or np.ndim(composition) == 1 else list(composition)
        cands = [candidates] * n if single or isinstance(candidates[0], str) else list(candidates)
        if len(comps) != n or len(cands) != n:
            raise DefectnetError(f"got {n} spectra but {len(comps)} compositions and {len(cands)} candidate lists")
        index = {el: i for i, el in enumerate(self.vocabulary)}
        mask = np.zeros((n, len(self.vocabulary)), bool)
        for i, cs in enumerate(cands):
            unknown = [c for c in cs if c not in index]
            if unknown:
                raise DefectnetError(f"candidates {unknown} are not in the model's vocabulary")
            mask[i, [index[c] for c in cs]] = True
        comp = np.stack([composition_vector(c, self.host_elements) for c in comps])
        was_training = self.training
        self.eval()
        outs = []
        for s in range(0, n, batch_size):
            sl = slice(s, s + batch_size)
            o = self(torch.from_numpy(p[sl]), torch.from_numpy(d[sl]), torch.from_numpy(comp[sl]), torch.from_numpy(mask[sl]))
            outs.append({k: o[k].numpy() for k in ("concentration", "sigma", "presence")})
        self.train(was_training)
        out = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
        result = [{el: {"concentration": float(out["concentration"][i, index[el]]),
                        "uncertainty": float(out["sigma"][i, index[el]]),
                        "presence": float(out["presence"][i, index[el]])} for el in cs} for i, cs in enumerate(cands)]
        return result[0] if single else result


def scatter_candidates(values: dict, order, valid, B: int, V: int) -> dict:
    """Per-candidate (B, K) tensors, candidate k of sample b being vocabulary entry ``order[b, k]``, as (B, V)
    tensors: 0 for every element not listed (``valid`` False), the hard mask."""
    out = {}
    for name, val in values.items():
        full = torch.zeros(B, V, dtype=val.dtype, device=val.device)
        out[name] = full.scatter(1, order, torch.where(valid, val, torch.zeros_like(val)))
    return out


def conv_stack(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Run a stack of Conv1d (+ activation) layers as (1, k) Conv2d in channels-last layout.

    Same weights, same result (to float rounding) as ``seq(x)``; oneDNN's channels-last
    kernels make it ~1.9× faster in inference and ~1.5× in training on CPU (measured here,
    1 thread, the shipped model's stack). x (B, C, G) -> (B, C', G').
    """
    h = x[:, :, None, :].contiguous(memory_format=torch.channels_last)  # (B, C, 1, G)
    for layer in seq:
        if isinstance(layer, nn.Conv1d):
            h = F.conv2d(h, layer.weight[:, :, None, :], layer.bias, stride=(1, layer.stride[0]),
                         padding=(0, layer.padding[0]))
        else:
            h = layer(h)
    return h[:, :, 0]


class CandidateBlock(nn.Module):
    """Candidates read the spectrum (cross-attention), then each other (self-attention), then an MLP."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.ln_q, self.ln_s, self.ln_m = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.cross = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * d, d))

    def forward(self, q, tokens, pad, bias=None):  # q (B, K, D), tokens (B, L, D), pad (B, K), bias (B·heads, K, L)
        h = self.ln_q(q)
        q = q + self.cross(h, tokens, tokens, attn_mask=bias, need_weights=False)[0]
        h = self.ln_s(q)
        q = q + self.self_attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        return q + self.mlp(self.ln_m(q))


class DefectNet(SpectralModel):
    """Our architecture: energy-aware spectral tokens, an element-feature host embedding, one query per candidate.

    *Spectrum.* Four channels over the G bins: asinh of the pristine per-bin probability
    (×G), asinh of the defect signature G·(q_doped − q_pristine)/delta_scale, the clipped
    log-ratio ln((q_d + ε)/(q_p + ε)), and the warped energy coordinate. Three stride-2
    convolutions make G/8 tokens; each gets a Fourier encoding of its absolute (warped)
    energy and radial-basis features of its energy relative to the host's scale
    sqrt⟨E²⟩, and no normalisation, so the tokens keep the signature's amplitude.
    *Moments.* The relative changes of the spectral moments ⟨E^k⟩, k in ``MOMENTS``: by the
    sum rule Tr D = Σ_i Φ_ii / m_i, ⟨E²⟩ moves by c (m_site/m_dopant − 1) per mass defect,
    so these numbers carry the concentration of dopants that leave no separate peak.
    *Host.* An impurity-averaged configuration in the paper's sense: Σ_i c_i MLP(features of
    element i) over the host composition. *Candidates.* Each gets its own query from its
    physical features, a learned embedding, its mass / size / electronegativity relations
    to the host and single-dopant sum-rule estimates c ≈ (Δ⟨E²⟩/⟨E²⟩) / (m_i/m_d − 1);
    queries share weights (equivariant to the order of candidates), read the tokens by
    cross-attention — with a learnable per-head bias towards the host-relative energy
    ½ ln(m_host/m_dopant) where a mass defect's mode would sit — and each other by
    self-attention. *Output.* A hurdle head per candidate: presence logit, mean and log-σ of
    ln c (heteroscedastic). With ``magnitude_anchor`` the mean is a correction to
    ln‖Δq‖₁ + a: the L1 norm of the signature is linear in the total concentration (slope
    1.02 in ln–ln over all committed hosts), so the head only has to share it out. The reported concentration is the median of the mixture
    (1 − p) δ(0) + p LogNormal (0 when p ≤ ½), its uncertainty the half-width of the
    mixture's central 68.3 % interval. Both are calibrated on validation data after training:
    a temperature on the presence logit (``logit_scale``) and a factor on the width
    (``sigma_scale``).
    """

    MOMENTS = (-2.0, -1.0, 1.0, 2.0, 3.0, 4.0, 6.0)

    def __init__(self, config: ModelConfig, grid, vocabulary=DOPANTS, host_elements=None):
        super().__init__(config, grid, vocabulary, host_elements)
        c, d = config, config.d_model
        feats = feature_table(self.host_elements)
        mean, std = feats.mean(0), feats.std(0) + 1e-6
        self.register_buffer("host_feats", torch.as_tensor((feats - mean) / std, dtype=torch.float32))  # (H, 8)
        self.register_buffer("dopant_feats", torch.as_tensor((feature_table(self.vocabulary) - mean) / std,
                                                             dtype=torch.float32))  # (V, 8)
        self.register_buffer("host_mass", torch.as_tensor(np.exp(feats[:, 1]), dtype=torch.float32))  # (H,) amu
        self.register_buffer("dopant_mass", torch.as_tensor(np.exp(feature_table(self.vocabulary)[:, 1]),
                                                            dtype=torch.float32))  # (V,) amu
        self.register_buffer("sigma_scale", torch.ones(()))  # post-hoc calibration factor of σ
        self.register_buffer("logit_scale", torch.ones(()))  # post-hoc temperature of the presence logit
        # Bins are uniform in the grid's warped energy, so the bin index is the warped coordinate.
        self.register_buffer("position", torch.as_tensor(np.arange(c.n_bins) / (c.n_bins - 1), dtype=torch.float32))
        layers, width = [], 4
        for k, out in enumerate(c.channels):
            layers += [nn.Conv1d(width, out, 7 if k == 0 else 5, stride=2, padding=3 if k == 0 else 2), nn.GELU()]
            width = out
        self.conv = nn.Sequential(*layers)
        self.to_tokens = nn.Linear(width, d)
        self.pos = nn.Linear(16, d)  # Fourier features of the tokens' warped energy
        self.register_buffer("rbf_centers", torch.linspace(-3.0, 1.5, 12))
        self.rel_pos = nn.Linear(12, d)  # radial-basis features of the tokens' host-relative ln energy
        # Cross-attention bias −a_h (u_token − û_candidate − b_h)², û = ½ ln(m_host / m_dopant): each head
        # can look where the candidate's mode would be (a_h → 0 turns the prior off).
        self.bias_strength = nn.Parameter(torch.full((c.n_heads,), -2.0))
        self.bias_offset = nn.Parameter(torch.linspace(-0.5, 0.5, c.n_heads))
        n_glob = 2 * len(self.MOMENTS) + 1
        self.host = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, d))
        self.glob = nn.Linear(n_glob, d)
        self.embed = nn.Embedding(c.n_elements, c.element_embedding) if c.element_embedding else None
        n_query = 8 + c.element_embedding + 13 + n_glob + d
        self.query = nn.Sequential(nn.Linear(n_query, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.blocks = nn.ModuleList(CandidateBlock(d, c.n_heads, c.dropout) for _ in range(c.n_layers))
        self.ln_out = nn.LayerNorm(d)
        self.head = nn.Linear(d, 3)  # presence logit, mean of y, log σ of y
        if c.magnitude_anchor:
            self.anchor_offset = nn.Parameter(torch.tensor(-1.5))  # ln c_total − ln‖Δq‖₁ (fit on the reference data)

    def tokens(self, p, q, log_scale):  # per-bin probabilities ×G (B, G), ln E_scale (B,) -> (B, L, D), u (B, L)
        eps = 1e-3
        x = torch.stack([torch.asinh(p), torch.asinh((q - p) / self.config.delta_scale),
                         torch.log((q + eps) / (p + eps)).clamp(-5, 5), self.position.expand_as(p)], 1)  # (B, 4, G)
        return self._finish_tokens(self.to_tokens(conv_stack(self.conv, x).transpose(1, 2)), log_scale)

    def _finish_tokens(self, t, log_scale):  # (B, L, D) conv tokens -> tokens with energy encodings, u (B, L)
        L, k = t.shape[1], self.position.numel() // t.shape[1]
        pos = F.avg_pool1d(self.position[None, None], k)[0, 0][:L]  # (L,) warped energy of each token
        e_tok = F.avg_pool1d(self.bin_centers[None, None], k)[0, 0][:L]  # (L,) meV
        freq = torch.arange(1, 9, dtype=t.dtype, device=t.device) * math.pi
        enc = torch.cat([torch.sin(pos[:, None] * freq), torch.cos(pos[:, None] * freq)], 1)  # (L, 16)
        # Energy relative to the host's scale sqrt⟨E²⟩: where a mass ratio puts a mode, in any host.
        u = torch.log(e_tok.clamp_min(0.05))[None, :] - log_scale[:, None]  # (B, L)
        rbf = torch.exp(-0.5 * ((u[..., None] - self.rbf_centers) / 0.35) ** 2)  # (B, L, 12)
        return t + self.pos(enc) + self.rel_pos(rbf), u

    def moments(self, p, q):  # -> relative moment changes (B, M) and the global feature vector (B, 2M + 1)
        e = self.bin_centers / 30.0  # (G,) in units of 30 meV
        pw = torch.stack([e.clamp_min(0.05) ** k for k in self.MOMENTS])  # (M, G)
        mp, mq = p @ pw.T / p.shape[1], q @ pw.T / q.shape[1]  # (B, M) ⟨E^k⟩
        rel = mq / mp.clamp_min(1e-12) - 1  # (B, M) relative change
        l1 = (q - p).abs().mean(-1, keepdim=True)  # (B, 1) ‖Δ‖₁ of the probabilities × G / G
        g = torch.cat([torch.asinh(rel / 1e-3), torch.log(mp.clamp_min(1e-12)) / 3, torch.asinh(l1 / 1e-3)], -1)
        return rel, g, mp

    def relations(self, idx, composition, rel2):  # idx (B, K) -> (B, K, 11) dopant-vs-host descriptors
        pres = (composition > 0)[:, None, :]  # (B, 1, H)
        f_d, f_h = self.dopant_feats[idx], self.host_feats  # (B, K, 8), (H, 8)
        big = 1e6
        dm = f_d[..., 1:2] - f_h[None, None, :, 1]  # (B, K, H) difference of ln m (standardised)
        mean_dm = (dm * composition[:, None]).sum(-1)
        lo = torch.where(pres, dm, big).amin(-1)
        hi = torch.where(pres, dm, -big).amax(-1)
        dchi = torch.where(pres, (f_d[..., 3:4] - f_h[None, None, :, 3]).abs(), big).amin(-1)
        drad = torch.where(pres, (f_d[..., 2:3] - f_h[None, None, :, 2]).abs(), big).amin(-1)
        # Single-dopant sum-rule estimates c ≈ Δ⟨E²⟩/⟨E²⟩ / (m_i / m_d − 1) for the nearest- and
        # farthest-in-mass host element and the composition-averaged mass.
        r = self.host_mass[None, None, :] / self.dopant_mass[idx][..., None] - 1  # (B, K, H)
        r_near = torch.where(pres, r, big).abs().amin(-1).clamp_min(1e-2)
        sign_near = torch.gather(torch.sign(torch.where(pres, r, big)), -1,
                                 torch.where(pres, r.abs(), big).argmin(-1, keepdim=True))[..., 0]
        r_far = torch.where(pres, r.abs(), -big).amax(-1).clamp_min(1e-2)
        r_mean = (r * composition[:, None]).sum(-1)
        r_mean = torch.where(r_mean.abs() < 1e-2, torch.full_like(r_mean, 1e-2), r_mean)
        x = rel2[:, None]  # (B, 1)
        est = torch.stack([x * sign_near / r_near, x / r_far, x / r_mean], -1)  # (B, K, 3)
        logr = torch.stack([r_near.log(), r_far.log(), r_mean.abs().log()], -1) / 4  # (B, K, 3)
        return torch.cat([torch.stack([mean_dm, lo, hi, dchi, drad, sign_near, torch.sign(r_mean)], -1), logr,
                          torch.asinh(est / 1e-3) / 4], -1)

    def forward(self, pristine, doped, composition, candidates):
        B, V = candidates.shape
        p, q = self.probabilities(pristine), self.probabilities(doped)  # (B, G)
        comp = composition / composition.sum(-1, keepdim=True).clamp_min(1e-12)  # (B, H)
        rel, glob, mp = self.moments(p, q)  # (B, M), (B, 2M + 1), (B, M)
        ctx = comp @ self.host(self.host_feats) + self.glob(glob)  # (B, D): Σ_i c_i MLP(x_i) + moments
        log_scale = 0.5 * torch.log(mp[:, self.MOMENTS.index(2.0)].clamp_min(1e-12)) + math.log(30.0)  # ln meV
        tokens, u = self.tokens(p, q, log_scale)  # (B, L, D), (B, L)
        tokens = tokens + ctx[:, None]
        K = max(int(candidates.sum(1).max()), 1)
        order = torch.argsort(candidates.to(torch.int8), dim=1, descending=True, stable=True)[:, :K]  # (B, K)
        valid = candidates.gather(1, order)  # (B, K)
        parts = [self.dopant_feats[order]]
        if self.embed is not None:
            parts.append(self.embed(order))
        parts += [self.relations(order, comp, rel[:, self.MOMENTS.index(2.0)]), glob[:, None].expand(B, K, -1), ctx[:, None].expand(B, K, -1)]
        h = self.query(torch.cat(parts, -1))  # (B, K, D)
        m_host = comp @ self.host_mass  # (B,) composition-averaged host mass, amu
        u_hat = 0.5 * torch.log(m_host[:, None] / self.dopant_mass[order])  # (B, K)
        diff = u[:, None, None, :] - u_hat[:, None, :, None] - self.bias_offset[None, :, None, None]  # (B, h, K, L)
        bias = (-F.softplus(self.bias_strength)[None, :, None, None] * diff**2).flatten(0, 1)  # (B·h, K, L)
        for block in self.blocks:
            h = block(h, tokens, ~valid, bias)
        logit, mu, log_sigma = self.head(self.ln_out(h)).unbind(-1)  # (B, K) each
        if self.config.magnitude_anchor:
            mu = mu + self.anchor(p, q)[:, None]
        mu = Y_MAX - F.softplus(Y_MAX - mu)  # smooth upper bound: c ≤ 1
        return self._outputs(logit, mu, log_sigma.clamp(-5, 1.5), order, valid, B, V)

    def _outputs(self, logit, mu, log_sigma, order, valid, B, V):
        """The hurdle head's (B, K) outputs as the (B, V) ``concentration``, ``sigma`` and ``presence``."""
        out = {"logit": logit, "mu": mu, "log_sigma": log_sigma, "order": order, "valid": valid}
        prob, s = self.calibrated(logit, log_sigma)
        conc = self.mixture_quantile(prob, mu, s, 0.5)
        sigma = 0.5 * (self.mixture_quantile(prob, mu, s, 0.8413) - self.mixture_quantile(prob, mu, s, 0.1587))
        return out | scatter_candidates({"concentration": conc, "sigma": sigma, "presence": prob}, order, valid, B, V)

    def calibrated(self, logit, log_sigma):
        """(presence probability, σ of ln c) of the head's outputs, with the post-hoc calibration applied."""
        return torch.sigmoid(logit * self.logit_scale), torch.exp(log_sigma) * LOG_C_SCALE * self.sigma_scale

    def anchor(self, p, q):  # per-bin probabilities ×G (B, G) -> (B,) y of the total concentration ‖Δq‖₁ predicts
        l1 = (q - p).abs().mean(-1).clamp_min(1e-5)  # ‖Δq‖₁ of the per-bin probabilities
        return (torch.log(l1) + self.anchor_offset - LOG_C_CENTER) / LOG_C_SCALE

    @staticmethod
    def mixture_quantile(prob, mu, s, level: float):
        """Quantile ``level`` of (1 − p) δ(0) + p LogNormal(ln c = mu·scale + center, s), capped at c = 1."""
        u = ((level - (1 - prob)) / prob.clamp_min(1e-6)).clamp(1e-6, 1 - 1e-6)
        x = torch.exp((mu * LOG_C_SCALE + LOG_C_CENTER + s * torch.special.ndtri(u)).clamp_max(0.0))
        return torch.where(prob > 1 - level, x, torch.zeros_like(x))

    def loss(self, out, targets, candidates):
        """BCE on presence over candidates + β-NLL of ln c over true dopants; returns (total, parts)."""
        valid, t = out["valid"], targets.gather(1, out["order"])  # (B, K)
        present = (t > 0) & valid
        bce = F.binary_cross_entropy_with_logits(out["logit"][valid], present[valid].float())
        y = (torch.log(t.clamp_min(1e-6)) - LOG_C_CENTER) / LOG_C_SCALE
        var = torch.exp(2 * out["log_sigma"])
        nll = 0.5 * ((y - out["mu"]) ** 2 / var + torch.log(var))
        if self.config.beta_nll:
            nll = nll * var.detach() ** self.config.beta_nll
        nll = nll[present].mean() if present.any() else out["mu"].sum() * 0
        l1 = 100 * (out["concentration"] - targets).abs()[candidates].mean()
        return bce + nll + self.config.l1_weight * l1, {"bce": bce.item(), "nll": nll.item(), "l1": l1.item()}


class PaperNet(SpectralModel):
    """The published DefectNet, reproduced: 3 channels, Conv1d 3→32→64→128, 1-query attention, MLP, hard mask.

    Channels over the G bins: the pristine PDoS (per-bin probability × G), the log-ratio
    log10((g_doped + ε)/(g_pristine + ε)), and the composition vector zero-padded to G (the
    paper convolves it as if it were a spectrum). No positional information, no uncertainty.
    Output is concentration × ``paper_target_scale``, can be negative, and is multiplied by
    the candidate mask. ``sigma`` is reported as 0 and ``presence`` as 1[c ≥ 0.1 at.%].
    """

    def __init__(self, config: ModelConfig, grid, vocabulary=DOPANTS, host_elements=None):
        super().__init__(config, grid, vocabulary, host_elements)
        c = config
        if c.n_host_elements > c.n_bins:
            raise DefectnetError("the paper architecture pads the composition to the grid; it needs H <= G")
        a, b, w = c.paper_channels
        self.conv = nn.Sequential(nn.Conv1d(3, a, 5, padding=2), nn.ReLU(), nn.Conv1d(a, b, 5, padding=2), nn.ReLU(),
                                  nn.Conv1d(b, w, 5, padding=2))
        self.query = nn.Linear(c.n_elements, w)
        self.attn = nn.MultiheadAttention(w, c.paper_heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(w, c.paper_hidden), nn.ReLU(), nn.Linear(c.paper_hidden, c.paper_hidden),
                                 nn.ReLU(), nn.Linear(c.paper_hidden, c.n_elements))

    def forward(self, pristine, doped, composition, candidates):
        p, q = self.probabilities(pristine), self.probabilities(doped)  # (B, G)
        eps = self.config.paper_eps
        comp = F.pad(composition, (0, p.shape[1] - composition.shape[1]))  # (B, G)
        x = torch.stack([p, torch.log10((q + eps) / (p + eps)), comp], 1)  # (B, 3, G)
        tokens = conv_stack(self.conv, x).transpose(1, 2)  # (B, G, 128)
        mask = candidates.to(p.dtype)
        query = self.query(mask)[:, None]  # (B, 1, 128)
        h = self.attn(query, tokens, tokens, need_weights=False)[0][:, 0]  # (B, 128)
        raw = self.mlp(h) * mask  # (B, V): hard mask
        conc = raw / self.config.paper_target_scale
        return {"raw": raw, "concentration": conc, "sigma": torch.zeros_like(conc),
                "presence": ((conc >= 1e-3) & candidates).to(conc.dtype)}

    def loss(self, out, targets, candidates):
        """MSE between output and 10 × target on candidate entries (the paper's loss)."""
        mse = F.mse_loss(out["raw"][candidates], targets[candidates] * self.config.paper_target_scale)
        return mse, {"mse": mse.item()}


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def host_calibration(model, *, seen: bool):
    """The model calibrated for a host seen in training, or for an unseen one; ``model`` is left as it is.

    Parameters
    ----------
    model : SpectralModel
        A trained model; ``model.sigma_scale_unseen``, when it has one, is the σ scale of hosts
        held out of training.
    seen : bool
        Whether the host was in the model's training data.

    Returns
    -------
    SpectralModel
        ``model`` itself for a seen host (or a model without an unseen-host scale); otherwise a
        shallow copy that shares its weights and answers with ``sigma_scale_unseen`` as its σ scale.
    """
    unseen = getattr(model, "sigma_scale_unseen", None)
    if seen or unseen is None or not hasattr(model, "sigma_scale") or not np.isfinite(unseen):
        return model
    calibrated = copy.copy(model)  # the same weights; its own buffer dict, so the scale is its own
    calibrated._buffers = dict(model._buffers)
    calibrated.sigma_scale = torch.full_like(model.sigma_scale, float(unseen))
    return calibrated
