"""DefectNet conditioned on the host's own physics: each candidate reads the spectrum through its signature in this host.

The plain network has to learn, from other hosts, what a dopant does to a host it never saw,
and on never-seen hosts it does no better than answering 0. Analysis by synthesis transfers
(the host's simulated signatures are the physics), but it is linear and has no prior. This
model joins them: its input for each candidate is *what that candidate does in this host* —
its simulated signature curves Δ_k(c) at the basis concentrations
(:class:`~defectnet.unmix.SignatureBasis`) — beside the spectra and the element descriptors.

Per candidate k, from the curves b_kj = Δ_k(x_kj) (per-bin probability × G, as the spectra):
the slope s_k = Σ_j x_kj b_kj / Σ_j x_kj² (signature per unit concentration); the basis' own
reading c_phys of the measured Δ — unmixing's fit (:meth:`ConditionedNet.physics_reading`:
non-negative least squares of Δ on all candidates together, so two candidates with alike
signatures share the evidence, with each signature read at the fitted total concentration),
batched in torch; cosines of Δ with each curve and with the other candidates' slopes; a
learned embedding of the curves' shape (a small 1-D convolution over the n curves); and an
attention bias that points each candidate's cross-attention at the energies where its own
signature lies. The spectrum tokens gain a fifth channel, the residual Δ − Σ c_phys s_k(C)
(what the basis cannot explain). The concentration head predicts a correction to ln c_phys:
the network starts from the physics and learns where it errs (coupled dopants, shifted modes,
noise) and how sure to be. Everything
else — tokens, moments, host embedding, self-attention among candidates, the hurdle head and
its calibration — is :class:`~defectnet.model.network.DefectNet`'s.

Inputs beyond the plain model's: ``curves`` (B, K, n, G) per meV on the model's grid and
``knots`` (B, K, n) atomic fractions, for the B samples' candidates in the order of their
vocabulary index (:func:`candidate_order`), zeros where a sample has fewer than K.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from defectnet.errors import DefectnetError
from defectnet.model.network import LOG_C_CENTER, LOG_C_SCALE, Y_MAX, DefectNet, ModelConfig, CandidateBlock, conv_stack

N_BASIS_FEATURES = 9
PHYSICS_FLOOR = 1e-3  # atomic fraction the reading's ln c is floored at (an absent candidate's reads 0)


def per_unit_at(b, knots, total):
    """Each candidate's signature per unit concentration at the total dopant fraction (B, K, G).

    ``b`` (B, K, n, G) curves at ``knots`` (B, K, n) atomic fractions (ascending), ``total`` (B,):
    linear between the knots, the nearest knot's outside them (:func:`defectnet.unmix._per_unit`).
    """
    s = b / knots.clamp_min(1e-6)[..., None]
    n, G = knots.shape[-1], b.shape[-1]
    t = total[:, None, None].expand(-1, knots.shape[1], 1).contiguous()
    j = torch.searchsorted(knots.contiguous(), t).clamp(1, n - 1)  # (B, K, 1): upper knot
    x0, x1 = knots.gather(2, j - 1)[..., 0], knots.gather(2, j)[..., 0]
    w = ((total[:, None] - x0) / (x1 - x0).clamp_min(1e-9)).clamp(0, 1)[..., None]  # (B, K, 1)
    s0 = s.gather(2, (j - 1)[..., None].expand(-1, -1, 1, G))[:, :, 0]
    s1 = s.gather(2, j[..., None].expand(-1, -1, 1, G))[:, :, 0]
    return s0 * (1 - w) + s1 * w


def candidate_order(candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, valid), each (B, K): the candidates' vocabulary indices, ascending, and which are real.

    K is the largest number of candidates in the batch; rows with fewer are padded (``valid`` False).
    """
    mask = np.asarray(candidates, bool)
    k = max(int(mask.sum(1).max()), 1)
    order = np.argsort(~mask, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(mask, order, 1)


class BasisTable:
    """Signature curves of hosts' candidates on one grid, in one spectrum mode, looked up per sample.

    Parameters
    ----------
    bases : dict host name -> SignatureBasis
    vocabulary : sequence of str (V)
    grid : EnergyGrid
        Every basis must be on it.
    kind : {'pdos', 'gpdos'}
    n_knots : int
        Curves per candidate (the basis concentrations); every basis must have this many.
    """

    def __init__(self, bases: dict, vocabulary, grid, kind: str = "gpdos", n_knots: int = 3):
        self.hosts = sorted(bases)
        self.vocabulary, self.grid, self.kind = tuple(vocabulary), grid, kind
        self.alternative: BasisTable | None = None  # :meth:`with_alternative`
        index = {el: i for i, el in enumerate(self.vocabulary)}
        H, V, G = len(self.hosts), len(self.vocabulary), grid.n_bins
        self.curves = np.zeros((H, V, n_knots, G), np.float32)  # per meV
        self.knots = np.zeros((H, V, n_knots), np.float32)  # atomic fractions
        self.has = np.zeros((H, V), bool)
        for h, name in enumerate(self.hosts):
            b = bases[name]
            if b.grid.grid_id != grid.grid_id:
                raise DefectnetError(f"the basis of {name} is on grid {b.grid.grid_id}, the model's is {grid.grid_id}")
            if b.realised.shape[1] != n_knots:
                raise DefectnetError(f"the basis of {name} has {b.realised.shape[1]} concentrations; {n_knots} expected")
            for k, el in enumerate(b.elements):
                if el in index:
                    v = index[el]
                    self.curves[h, v], self.knots[h, v], self.has[h, v] = b.curves[kind][k], b.realised[k], True

    @classmethod
    def from_dir(cls, folder, vocabulary, grid, hosts=None, **kw) -> BasisTable:
        """Every ``*.npz`` basis in ``folder`` (only ``hosts``, when given)."""
        from defectnet.signatures import SignatureBasis, basis_files

        bases = {}
        for f in basis_files(folder):
            with np.load(f, allow_pickle=False) as z:
                host = json.loads(str(z["header"]))["host"]
            if hosts is None or host in hosts:
                bases[host] = SignatureBasis.load(f)
        return cls(bases, vocabulary, grid, **kw)

    def row(self, name: str) -> int:
        try:
            return self.hosts.index(name)
        except ValueError:
            raise DefectnetError(f"no signature basis for host {name!r}") from None

    def rows_of(self, data) -> np.ndarray:
        """(n,) row of each sample's host in the table; raises for a sample whose host has no basis."""
        index = {h: i for i, h in enumerate(self.hosts)}
        names = np.asarray(data.host_names, dtype=object)[data.host_id]
        rows = np.array([index.get(str(h), -1) for h in names], dtype=int)
        if np.any(rows < 0):
            raise DefectnetError(f"no signature basis for host {names[np.argmax(rows < 0)]!r}")
        return rows

    def with_alternative(self, bases: dict) -> BasisTable:
        """This table, with ``bases`` (host -> SignatureBasis, e.g. a second potential's, for some of its hosts)
        kept as :attr:`alternative`, for training against a basis that is not the spectra's own."""
        self.alternative = BasisTable(bases, self.vocabulary, self.grid, self.kind, self.knots.shape[-1]) if bases else None
        return self

    def alternative_lookup(self, host_rows, candidates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(curves, knots, ok (B,)): :meth:`lookup` in :attr:`alternative` for the samples whose host has
        an alternative basis holding every one of their candidates (``ok``); zeros elsewhere."""
        alt = self.alternative
        if alt is None:
            raise DefectnetError("this basis table has no alternative bases (with_alternative)")
        order, valid = candidate_order(candidates)
        index = {h: i for i, h in enumerate(alt.hosts)}
        rows = np.array([index.get(self.hosts[r], -1) for r in np.asarray(host_rows)], int)
        safe = np.maximum(rows, 0)
        ok = (rows >= 0) & np.all(alt.has[safe[:, None], order] | ~valid, axis=1)
        curves = np.where((valid & ok[:, None])[..., None, None], alt.curves[safe[:, None], order], 0.0)
        knots = np.where((valid & ok[:, None])[..., None], alt.knots[safe[:, None], order], 0.0)
        return curves.astype(np.float32), knots.astype(np.float32), ok

    def lookup(self, host_rows, candidates) -> tuple[np.ndarray, np.ndarray]:
        """(curves (B, K, n, G), knots (B, K, n)) of each sample's candidates, in :func:`candidate_order`.

        Raises if a candidate of a sample has no curve in its host's basis.
        """
        order, valid = candidate_order(candidates)
        rows = np.asarray(host_rows)[:, None]
        if not np.all(self.has[rows, order] | ~valid):
            bad = np.argwhere(valid & ~self.has[rows, order])[0]
            raise DefectnetError(f"candidate {self.vocabulary[order[tuple(bad)]]} has no signature in the basis of "
                                 f"{self.hosts[int(np.asarray(host_rows)[bad[0]])]}")
        curves = np.where(valid[..., None, None], self.curves[rows, order], 0.0)
        knots = np.where(valid[..., None], self.knots[rows, order], 0.0)
        return curves.astype(np.float32), knots.astype(np.float32)


class ConditionedNet(DefectNet):
    """:class:`DefectNet` whose candidates carry their simulated signatures in the host (module docstring)."""

    RIDGE = 1e-3  # λ of the linear reading, relative to the mean diagonal of S Sᵀ

    def __init__(self, config: ModelConfig, grid, vocabulary=None, host_elements=None):
        from defectnet.elements import DOPANTS

        super().__init__(config, grid, vocabulary or DOPANTS, host_elements)
        c, d = config, config.d_model
        first = self.conv[0]
        self.conv[0] = nn.Conv1d(5, first.out_channels, first.kernel_size[0], stride=2, padding=first.padding[0])
        # the curves' shape at a quarter of the grid's resolution (4 bins averaged): their
        # fine structure is read through the cosines and the attention bias
        self.curve_conv = nn.Sequential(nn.Conv1d(3, 16, 5, stride=2, padding=2), nn.GELU(),
                                        nn.Conv1d(16, 32, 5, stride=2, padding=2), nn.GELU())
        self.curve_proj = nn.Linear(64, d)
        n_query = self.query[0].in_features + N_BASIS_FEATURES + d
        self.query = nn.Sequential(nn.Linear(n_query, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.signature_bias = nn.Parameter(torch.full((c.n_heads,), 0.5))
        self.blocks = nn.ModuleList(CandidateBlock(d, c.n_heads, c.dropout) for _ in range(c.n_layers))

    def signatures(self, curves, knots, valid):
        """Curves as per-bin probabilities × G (B, K, n, G) and their slopes through the origin (B, K, G)."""
        b = curves * self.bin_widths * curves.shape[-1]
        x = knots.clamp_min(0)
        slope = (x[..., None] * b).sum(2) / (x * x).sum(2).clamp_min(1e-12)[..., None]
        return b * valid[..., None, None], slope * valid[..., None]

    def physics_reading(self, delta, b, slope, knots, valid):
        """What the basis alone says: concentrations c (B, K) ≥ 0 that explain Δ (B, G), and the residual (B, G).

        The fit of :func:`defectnet.unmix.unmix` (reading ``total``), batched and differentiable:
        least squares weighted as unmixing weights a density (bins × w^(-1/2)), non-negative by
        dropping negative coefficients and solving again, then each candidate's signature per unit
        concentration read at the fitted total dopant fraction (signatures are not linear in c:
        dopants couple) and solved again, twice.
        """
        weight = self.bin_widths.rsqrt()  # (G,)
        y = delta * weight
        per_unit = slope
        c = self._nonnegative_fit(slope * weight, y, valid)
        for _ in range(2):
            per_unit = per_unit_at(b, knots, c.sum(1)) * valid[..., None]
            c = self._nonnegative_fit(per_unit * weight, y, valid)
        return c, delta - (c[..., None] * per_unit).sum(1)

    def _nonnegative_fit(self, A, y, valid, passes: int = 4):
        """Ridge least squares of y (B, G) on the rows of A (B, K, G), candidates with a negative
        coefficient dropped and the rest solved again (active-set NNLS, ``passes`` rounds): (B, K)."""
        active = valid
        eye = torch.eye(A.shape[1], dtype=A.dtype, device=A.device)
        for _ in range(passes):
            S = A * active[..., None]
            AtA = S @ S.transpose(1, 2)  # (B, K, K)
            diag = torch.diagonal(AtA, dim1=1, dim2=2)
            lam = (self.RIDGE * diag.sum(1) / active.sum(1).clamp_min(1)).clamp_min(1e-8)[:, None]
            # dropped and padded candidates get an identity row: their coefficient is 0
            AtA = AtA + eye * torch.where(active, lam, torch.ones_like(lam))[:, :, None]
            c = torch.linalg.solve(AtA, (S @ y[..., None]))[..., 0] * active
            active = active & (c > 0)
        return c.clamp_min(0)

    def basis_features(self, delta, b, slope, c_phys, resid, valid):
        """Per-candidate features of the linear reading (B, K, N_BASIS_FEATURES)."""
        nd = delta.norm(dim=-1).clamp_min(1e-9)  # (B,)
        ns = slope.norm(dim=-1).clamp_min(1e-9)  # (B, K)
        cos = (slope @ delta[..., None])[..., 0] / (ns * nd[:, None])  # (B, K)
        cos_curves = (b @ delta[:, None, :, None])[..., 0] / (b.norm(dim=-1).clamp_min(1e-9) * nd[:, None, None])
        unit = slope / ns[..., None]
        twin = (unit @ unit.transpose(1, 2)) - 2 * torch.eye(slope.shape[1], device=slope.device)  # self → −1
        twin = torch.where(valid[:, None, :], twin, torch.full_like(twin, -1)).amax(-1)  # (B, K)
        explained = 1 - (resid.norm(dim=-1) / nd) ** 2  # (B,)
        return torch.cat([torch.asinh(c_phys / 1e-3)[..., None] / 4, cos[..., None], cos_curves, twin[..., None],
                          torch.log(ns)[..., None] / 4, explained[:, None, None].expand(-1, slope.shape[1], 1),
                          torch.log(nd)[:, None, None].expand(-1, slope.shape[1], 1) / 4], -1)

    def curve_embedding(self, b, knots):
        """Shape of each candidate's curves (B, K, D): per unit concentration, asinh-compressed, convolved and pooled."""
        B, K, n, G = b.shape
        per_unit = b / knots.clamp_min(1e-6)[..., None]
        coarse = F.avg_pool1d(per_unit.reshape(B * K, n, G), 4)  # (B·K, n, G/4)
        h = conv_stack(self.curve_conv, torch.asinh(coarse / 10))  # (B·K, 32, G/16)
        pooled = torch.cat([h.mean(-1), h.amax(-1)], -1)  # (B·K, 64)
        return self.curve_proj(pooled).reshape(B, K, -1)

    def tokens(self, p, q, log_scale, resid=None):  # adds the residual channel to DefectNet's four
        eps = 1e-3
        resid = torch.zeros_like(p) if resid is None else resid
        x = torch.stack([torch.asinh(p), torch.asinh((q - p) / self.config.delta_scale),
                         torch.log((q + eps) / (p + eps)).clamp(-5, 5), self.position.expand_as(p),
                         torch.asinh(resid / self.config.delta_scale)], 1)  # (B, 5, G)
        return self._finish_tokens(self.to_tokens(conv_stack(self.conv, x).transpose(1, 2)), log_scale)

    def forward(self, pristine, doped, composition, candidates, curves, knots):
        B, V = candidates.shape
        p, q = self.probabilities(pristine), self.probabilities(doped)  # (B, G)
        order = torch.argsort((~candidates).to(torch.int8), dim=1, stable=True)[:, :curves.shape[1]]  # (B, K)
        valid = candidates.gather(1, order)
        b, slope = self.signatures(curves, knots, valid)  # (B, K, n, G), (B, K, G)
        with torch.no_grad():  # nothing learned upstream of the reading
            c_phys, resid = self.physics_reading(q - p, b, slope, knots, valid)
        comp = composition / composition.sum(-1, keepdim=True).clamp_min(1e-12)
        rel, glob, mp = self.moments(p, q)
        ctx = comp @ self.host(self.host_feats) + self.glob(glob)
        log_scale = 0.5 * torch.log(mp[:, self.MOMENTS.index(2.0)].clamp_min(1e-12)) + np.log(30.0)
        tokens, u = self.tokens(p, q, log_scale, resid)
        tokens = tokens + ctx[:, None]
        K = order.shape[1]
        parts = [self.dopant_feats[order]]
        if self.embed is not None:
            parts.append(self.embed(order))
        parts += [self.relations(order, comp, rel[:, self.MOMENTS.index(2.0)]), glob[:, None].expand(B, K, -1),
                  ctx[:, None].expand(B, K, -1), self.basis_features(q - p, b, slope, c_phys, resid, valid),
                  self.curve_embedding(b, knots)]
        h = self.query(torch.cat(parts, -1))  # (B, K, D)
        L = tokens.shape[1]
        profile = F.adaptive_avg_pool1d(slope.abs(), L)  # (B, K, L): where each signature lies
        profile = torch.log(profile / profile.amax(-1, keepdim=True).clamp_min(1e-12) + 1e-3)
        bias = (F.softplus(self.signature_bias)[None, :, None, None] * profile[:, None]).flatten(0, 1)  # (B·h, K, L)
        for block in self.blocks:
            h = block(h, tokens, ~valid, bias)
        logit, mu, log_sigma = self.head(self.ln_out(h)).unbind(-1)
        # the network corrects the basis' reading rather than starting from nothing
        mu = mu + (torch.log(c_phys.clamp_min(PHYSICS_FLOOR)) - LOG_C_CENTER) / LOG_C_SCALE
        mu = Y_MAX - F.softplus(Y_MAX - mu)
        return self._outputs(logit, mu, log_sigma.clamp(-5, 1.5), order, valid, B, V)
