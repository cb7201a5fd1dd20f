"""The :class:`Spectrum` domain object: a binned phonon DOS in meV.

Values are bin-integrated densities: ``values[i]`` is the mean density (per meV) in bin i,
so the area is ``sum(values * widths)`` on any, possibly non-uniform, bins. A measured
spectrum may carry ``errors``: the 1σ uncertainty of each bin's value, same units, bins taken
as independent. Every method returns a new object; the arrays are stored read-only.
"""

from __future__ import annotations

import copy

import numpy as np
from scipy.special import ndtr  # standard normal CDF, Φ(x) = (1 + erf(x/√2)) / 2

from defectnet.elements import check_element, neutron_weight
from defectnet.errors import DefectnetError
from defectnet.grid import EnergyGrid
from defectnet.resolution import FWHM_PER_SIGMA, get_resolution
from defectnet.units import from_mev, to_mev

#: Modes in [-tol, 0) are numerical noise on acoustic modes at Γ and are kept; below, imaginary.
IMAGINARY_TOL_MEV = 0.05
_CHUNK = 128  # Gaussians per block (sorted by energy, so a block spans few bins)
_TAIL = 8.5  # Gaussian tails beyond ±8.5σ hold < 1e-17 of the area
_MIN_SIGMA_MEV = 1e-9
_KEEP = object()  # Spectrum._new: keep the current errors


#: Share of a host's spectrum's area below its band edge (:func:`area_quantile_mev`): the edge
#: that ``unmix``, the input checks and the conditioned model's mode shifts all use.
BAND_EDGE_QUANTILE = 0.995


def area_quantile_mev(values, edges_mev, share: float):
    """Energy (meV) below which ``share`` of a spectrum's area lies — a band edge that a weak tail
    or trailing zero rows do not move.

    ``values`` (..., B) densities per meV on the bins ``edges_mev`` (B + 1,); negative values
    count as 0. Returns a float for one spectrum, an array (...,) for several.
    """
    edges = np.asarray(edges_mev, dtype=float)
    cum = np.cumsum(np.clip(np.asarray(values, dtype=float), 0, None) * np.diff(edges), axis=-1)
    k = np.minimum((cum < share * cum[..., -1:]).sum(-1), len(edges) - 2)
    out = edges[1:][k]
    return float(out) if np.ndim(out) == 0 else out


def _edges_of(grid_or_edges) -> np.ndarray:
    if isinstance(grid_or_edges, EnergyGrid):
        return grid_or_edges.edges
    return np.asarray(grid_or_edges, dtype=float)


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)  # always a copy
    a.setflags(write=False)
    return a


def _sigma_function(fwhm_mev, resolution):
    """Return E (meV) -> σ (meV) from exactly one of a constant FWHM or a resolution model."""
    if (fwhm_mev is None) == (resolution is None):
        raise DefectnetError("give exactly one of fwhm_mev (constant) or resolution (energy-dependent)")
    model = get_resolution(fwhm_mev if resolution is None else resolution)
    return (lambda e: np.maximum(model.fwhm_mev(np.abs(e)) / FWHM_PER_SIGMA, _MIN_SIGMA_MEV)), model.to_dict()


def _rebin_errors(old_edges, errors, new_edges) -> np.ndarray:
    """1σ of each new bin's mean density when independent old bins (``errors``, shape (n,)) are
    rebinned by overlap: σ_j = √(Σ_i (σ_i · overlap_ij)²) / width_j. Exact for the marginal
    variance of each new bin (the correlation a split old bin leaves between new bins is not kept).
    """
    cuts = np.union1d(old_edges, new_edges)
    cuts = cuts[(cuts >= max(old_edges[0], new_edges[0])) & (cuts <= min(old_edges[-1], new_edges[-1]))]
    out = np.zeros(new_edges.size - 1)
    if cuts.size >= 2:
        mid, length = 0.5 * (cuts[1:] + cuts[:-1]), np.diff(cuts)
        i = np.searchsorted(old_edges, mid, "right") - 1
        j = np.searchsorted(new_edges, mid, "right") - 1
        out = np.bincount(j, weights=(errors[i] * length) ** 2, minlength=out.size)
    return np.sqrt(out) / np.diff(new_edges)


def gaussian_shares(edges, centres, sigmas, weights, renormalise):
    """Σ_m weights[:, m] × (share of the Gaussian N(centres[m], sigmas[m]) in each bin), (k, n_bins).

    Shares are exact CDF differences at the edges. ``renormalise='below'`` divides each
    Gaussian by its mass above edges[0] (what spills below comes back; what lies above the
    last edge is lost); ``'both'`` by its mass on the grid (nothing is lost). Gaussians are
    taken in energy order, in blocks, each evaluated only on the edges within ±_TAIL σ.
    """
    out = np.zeros((weights.shape[0], edges.size - 1))
    order = np.argsort(centres, kind="stable")
    for start in range(0, order.size, _CHUNK):
        idx = order[start:start + _CHUNK]
        c, s = centres[idx], sigmas[idx]
        i0 = max(int(np.searchsorted(edges, np.min(c - _TAIL * s), "right")) - 1, 0)
        i1 = min(int(np.searchsorted(edges, np.max(c + _TAIL * s), "left")) + 1, edges.size)
        if i1 - i0 < 2:
            continue  # the whole block lies beyond the grid
        frac = np.diff(ndtr((edges[None, i0:i1] - c[:, None]) / s[:, None]), axis=1)
        norm = 1.0 - ndtr((edges[0] - c) / s) if renormalise == "below" else frac.sum(axis=1)
        frac = np.divide(frac, norm[:, None], out=np.zeros_like(frac), where=norm[:, None] > 1e-12)
        out[:, i0:i1 - 1] += weights[:, idx] @ frac
    return out


class Spectrum:
    """A binned spectrum on edges in meV, with optional per-element partials.

    Parameters
    ----------
    edges_mev : array, shape (n + 1,)
        Strictly increasing bin edges, meV.
    values : array, shape (n,)
        Mean density per meV in each bin.
    partials : dict[str, array of shape (n,)], optional
        Per-element partial densities, same convention (they sum to ``values`` when built
        by :meth:`from_modes`).
    kind : str
        ``"total"``, ``"gpdos"`` (neutron-weighted), ``"partial"``, ...
    meta : dict, optional
        Free, JSON-serialisable provenance (copied).
    errors : array, shape (n,), optional
        1σ uncertainty of each value (same units, ≥ 0), e.g. from a measured file's error
        column; ``None`` when unknown. :meth:`resample`, :meth:`normalized` and
        :meth:`scale_energy` propagate it; :meth:`broaden` and :meth:`neutron_weighted` drop it
        (``meta["errors_dropped"]`` says where).
    """

    def __init__(self, edges_mev, values, partials=None, *, kind="total", meta=None, errors=None):
        edges, vals = _frozen(edges_mev), _frozen(values)
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise DefectnetError("spectrum edges must be a 1-D, finite, strictly increasing array of ≥ 2 values")
        n = edges.size - 1
        if vals.shape != (n,):
            raise DefectnetError(f"spectrum values have shape {vals.shape}; expected ({n},) for {n + 1} edges")
        if not np.all(np.isfinite(vals)):
            raise DefectnetError("spectrum values contain NaN or inf")
        parts = {}
        for el, p in (partials or {}).items():
            p = _frozen(p)
            if p.shape != (n,) or not np.all(np.isfinite(p)):
                raise DefectnetError(f"partial {el!r} must be {n} finite values, got shape {p.shape}")
            parts[str(el)] = p
        if not isinstance(kind, str) or not kind:
            raise DefectnetError(f"spectrum kind must be a non-empty string, got {kind!r}")
        if errors is not None:
            errors = _frozen(errors)
            if errors.shape != (n,) or not np.all(np.isfinite(errors)) or np.any(errors < 0):
                raise DefectnetError(f"spectrum errors must be {n} finite values ≥ 0, got shape {errors.shape}")
        self.edges_mev, self.values, self.partials, self.errors = edges, vals, parts, errors
        self.kind, self.meta = kind, copy.deepcopy(dict(meta or {}))

    def __repr__(self):
        e = self.edges_mev
        return (f"Spectrum(kind={self.kind!r}, n_bins={self.values.size}, {e[0]:g}–{e[-1]:g} meV, "
                f"area={self.area():.6g}, partials={sorted(self.partials)}, errors={self.errors is not None})")

    def _new(self, edges=None, values=None, partials=None, kind=None, errors=_KEEP, **meta_updates) -> "Spectrum":
        """A copy with the given parts replaced; ``errors`` is kept unless given (``None`` drops it)."""
        if errors is _KEEP:
            errors = self.errors
        return Spectrum(self.edges_mev if edges is None else edges, self.values if values is None else values,
                        self.partials if partials is None else partials, kind=kind or self.kind,
                        meta={**self.meta, **meta_updates}, errors=errors)

    def _dropped_errors(self, where: str) -> dict:
        """The meta update saying ``where`` dropped this spectrum's errors ({} if it had none)."""
        if self.errors is None:
            return {}
        return {"errors_dropped": list(self.meta.get("errors_dropped", [])) + [where]}

    @property
    def centers_mev(self) -> np.ndarray:
        """Arithmetic bin midpoints, shape (n,), meV."""
        return 0.5 * (self.edges_mev[1:] + self.edges_mev[:-1])

    @property
    def widths_mev(self) -> np.ndarray:
        """Bin widths, shape (n,), meV."""
        return np.diff(self.edges_mev)

    # ----------------------------------------------------------------- constructors
    @classmethod
    def on_grid(cls, grid: EnergyGrid, values, partials=None, **kw) -> "Spectrum":
        """A spectrum on ``grid`` (values shape (grid.n_bins,))."""
        return cls(grid.edges, values, partials, **kw)

    @classmethod
    def from_points(cls, energy_mev, values, partials=None, **kw) -> "Spectrum":
        """Point samples (density per meV at strictly increasing energies, shape (n,)) as bins.

        Edges lie at the midpoints between samples and at the first and last samples, so the
        end bins are half bins (the area is the midpoint-box rule of the samples).
        """
        e = np.asarray(energy_mev, dtype=float)
        if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
            raise DefectnetError("point energies must be a 1-D strictly increasing array of ≥ 2 values")
        edges = np.concatenate([e[:1], 0.5 * (e[1:] + e[:-1]), e[-1:]])
        return cls(edges, values, partials, **kw)

    @classmethod
    def from_modes(cls, frequencies_mev, grid, *, weights=None, partial_weights=None, resolution=None,
                   fwhm_mev=None, kind="total", imaginary_tol_mev=IMAGINARY_TOL_MEV) -> "Spectrum":
        """DOS from discrete mode energies, each a Gaussian integrated exactly over each bin.

        Parameters
        ----------
        frequencies_mev : array, shape (m,)
            Mode energies, meV. Modes below ``-imaginary_tol_mev`` are imaginary: excluded and
            counted in ``meta["n_imaginary"]``; modes in [-tol, 0) (acoustic at Γ) are kept.
        grid : EnergyGrid or array of edges, shape (n + 1,)
        weights : array, shape (m,), optional
            Weight of each mode (default 1).
        partial_weights : dict[str, array of shape (m,)], optional
            Per-element weight of each mode (e.g. eigenvector weights summed per element);
            for each mode they must sum to 1 (within 1e-4; renormalised exactly).
        resolution, fwhm_mev
            Exactly one: a resolution model/name, or a constant FWHM in meV.

        Returns
        -------
        Spectrum
            Unit area; partial areas are the element mode fractions and sum to the total.
            The part of a line spilling below the first edge is put back on the grid (each
            mode keeps its weight); weight above the last edge is lost and reported as
            ``meta["lost_area"]`` (fraction of the mode weight). ``meta`` also holds
            ``n_modes``, ``n_imaginary``, ``min_imaginary_mev`` (if any) and ``broadening``.
        """
        edges = _edges_of(grid)
        f = np.asarray(frequencies_mev, dtype=float).ravel()
        w = np.ones_like(f) if weights is None else np.asarray(weights, dtype=float).ravel()
        if w.shape != f.shape or not (np.all(np.isfinite(f)) and np.all(np.isfinite(w))) or np.any(w < 0):
            raise DefectnetError("mode energies and weights must be finite arrays of one length, weights ≥ 0")
        names = sorted(partial_weights or {})
        pw = np.zeros((0, f.size))
        if names:
            pw = [np.asarray(partial_weights[el], dtype=float).ravel() for el in names]
            if any(p.shape != f.shape for p in pw):
                raise DefectnetError(f"partial weights must have one value per mode ({f.size})")
            pw = np.array(pw)
        sigma_of, res_dict = _sigma_function(fwhm_mev, resolution)

        imaginary = f < -abs(imaginary_tol_mev)
        keep = ~imaginary
        f_imag, f, w, pw = f[imaginary], f[keep], w[keep], pw[:, keep]
        if names:
            s = pw.sum(axis=0)
            worst = s[np.argmax(np.abs(s - 1.0))] if s.size else 1.0
            if abs(worst - 1.0) > 1e-4:
                raise DefectnetError(f"per-mode partial weights must sum to 1 (worst sum {worst:.6g})")
            pw = pw / s
        sigma = sigma_of(np.maximum(f, 0.0))

        # Row 0 the total, then one row per element; the spill below e_min (e.g. half of an
        # acoustic line at 0) is put back on the grid.
        spread = gaussian_shares(edges, f, sigma, np.vstack([w[None, :], pw * w]), "below")
        total, parts = spread[0], spread[1:]
        kept_weight, on_grid = float(w.sum()), float(total.sum())
        if not on_grid > 0:
            raise DefectnetError(f"no mode weight falls on the grid {edges[0]:g}–{edges[-1]:g} meV")
        widths = np.diff(edges)
        meta = {"n_modes": int(keep.size), "n_imaginary": int(imaginary.sum()), "broadening": [res_dict]}
        if imaginary.any():
            meta["min_imaginary_mev"] = float(f_imag.min())
        lost = 1.0 - on_grid / kept_weight
        if lost > 1e-12:
            meta["lost_area"] = lost
        return cls(edges, total / widths / on_grid, {el: p / widths / on_grid for el, p in zip(names, parts)},
                   kind=kind, meta=meta)

    # ----------------------------------------------------------------- operations
    def area(self) -> float:
        """∫ values dE over the bins (meV · density)."""
        return float(np.sum(self.values * self.widths_mev))

    def normalized(self) -> "Spectrum":
        """Unit area; partials and errors scaled by the same factor (the area is taken as exact)."""
        a = self.area()
        if not a > 0:
            raise DefectnetError(f"cannot normalise a spectrum of area {a:g}")
        return self._new(values=self.values / a, partials={el: p / a for el, p in self.partials.items()},
                         errors=None if self.errors is None else self.errors / a)

    def broaden(self, fwhm_mev=None, *, resolution=None) -> "Spectrum":
        """Gaussian convolution with a constant FWHM (meV) or an energy-dependent resolution.

        The content of bin j is spread with σ(c_j) over the bins: K[i, j] = ∫_bin_i G(E − c_j;
        σ(c_j)) dE (exact, via the normal CDF), each column normalised to 1 so the area is
        conserved exactly (the spill past either end is kept on the grid).
        """
        sigma_of, res_dict = _sigma_function(fwhm_mev, resolution)
        c, widths = self.centers_mev, self.widths_mev
        sigma = sigma_of(c)
        stack = np.vstack([self.values] + [self.partials[el] for el in self.partials]) * widths  # (1 + n_el, n)
        out = gaussian_shares(self.edges_mev, c, sigma, stack, "both")
        out /= widths
        return self._new(values=out[0], partials=dict(zip(self.partials, out[1:])), errors=None,
                         broadening=list(self.meta.get("broadening", [])) + [res_dict],
                         **self._dropped_errors("broaden"))

    def resample(self, grid_or_edges) -> "Spectrum":
        """Rebin onto new edges (EnergyGrid or array, meV) by interpolating the cumulative integral.

        Exact for the piecewise-constant density; conserves the area over the overlapping
        range. The area (of |values|) outside the new range is added to ``meta["lost_area"]``.
        Errors are combined in quadrature with the overlap weights (:func:`_rebin_errors`);
        a new bin outside the old range gets value and error 0.
        """
        new = _edges_of(grid_or_edges)
        if new.ndim != 1 or new.size < 2 or np.any(np.diff(new) <= 0):
            raise DefectnetError("new edges must be a 1-D strictly increasing array of ≥ 2 values")

        def rebin(v):
            cum = np.concatenate([[0.0], np.cumsum(v * self.widths_mev)])
            return np.diff(np.interp(new, self.edges_mev, cum)) / np.diff(new)

        kept = float(np.sum(np.abs(rebin(np.abs(self.values))) * np.diff(new)))
        lost = max(float(np.sum(np.abs(self.values) * self.widths_mev)) - kept, 0.0)
        errors = None if self.errors is None else _rebin_errors(self.edges_mev, self.errors, new)
        return self._new(edges=new, values=rebin(self.values), errors=errors,
                         partials={el: rebin(p) for el, p in self.partials.items()},
                         lost_area=float(self.meta.get("lost_area", 0.0)) + lost)

    def scale_energy(self, factor: float) -> "Spectrum":
        """Energies × ``factor`` (dimensionless, > 0), densities ÷ ``factor``: same area, stretched axis."""
        if not (np.isfinite(factor) and factor > 0):
            raise DefectnetError(f"energy scale factor must be a positive number, got {factor!r}")
        f = float(factor)
        return self._new(edges=self.edges_mev * f, values=self.values / f,
                         errors=None if self.errors is None else self.errors / f,
                         partials={el: p / f for el, p in self.partials.items()},
                         energy_scale=float(self.meta.get("energy_scale", 1.0)) * f)

    def is_on(self, grid_or_edges) -> bool:
        """True if the spectrum's edges are exactly those of ``grid_or_edges``."""
        return np.array_equal(self.edges_mev, _edges_of(grid_or_edges))

    def in_units(self, unit: str) -> tuple[np.ndarray, np.ndarray]:
        """(centres in ``unit``, density per ``unit``), shape (n,) each; the area is unit-invariant."""
        return from_mev(self.centers_mev, unit), self.values * float(to_mev(1.0, unit))

    def neutron_weighted(self, fractions: dict[str, float]) -> "Spectrum":
        """Neutron-weighted GPDoS g_N = Σ c_i (σ_i/m_i) g_i / Σ c_i (σ_i/m_i), unit area.

        ``fractions`` maps element → atomic fraction c_i; each g_i is the stored partial
        divided by its area (per-atom normalised). The returned partials are the weighted
        contributions, so they sum to the GPDoS.
        """
        if not self.partials:
            raise DefectnetError("the neutron-weighted GPDoS needs per-element partials; this spectrum has none")
        missing, extra = set(fractions) - set(self.partials), set(self.partials) - set(fractions)
        if missing or extra:
            raise DefectnetError(f"fractions and partials must name the same elements (no partial for "
                                 f"{sorted(missing)}, no fraction for {sorted(extra)})")
        contrib, norm = {}, 0.0
        for el, c in fractions.items():
            a = float(np.sum(self.partials[el] * self.widths_mev))
            if c < 0 or (c > 0 and not a > 0):
                raise DefectnetError(f"element {el!r}: need fraction ≥ 0 and a partial of positive area")
            weight = float(c) * neutron_weight(check_element(el))
            contrib[el], norm = (weight / a if c > 0 else 0.0) * self.partials[el], norm + weight
        if not norm > 0:
            raise DefectnetError("all neutron weights are zero")
        contrib = {el: v / norm for el, v in contrib.items()}
        return self._new(values=np.sum(list(contrib.values()), axis=0), partials=contrib, kind="gpdos",
                         errors=None, fractions={el: float(c) for el, c in fractions.items()},
                         **self._dropped_errors("neutron_weighted"))

    def peak_mev(self, e_min=None, e_max=None) -> float:
        """Centre (meV) of the highest bin whose centre lies in [e_min, e_max]."""
        c = self.centers_mev
        inside = (c >= (-np.inf if e_min is None else e_min)) & (c <= (np.inf if e_max is None else e_max))
        if not inside.any():
            raise DefectnetError(f"no bin centre in the window {e_min}–{e_max} meV")
        return float(c[inside][np.argmax(self.values[inside])])

    def wasserstein1_mev(self, other: "Spectrum") -> float:
        """Wasserstein-1 distance (meV) ∫|CDF_a − CDF_b| dE of the two spectra normalised to unit area.

        Both must be on the same edges (resample first). Exact for piecewise-constant densities.
        """
        if not np.array_equal(self.edges_mev, other.edges_mev):
            raise DefectnetError("W1 needs two spectra on the same edges; resample one onto the other first")
        a, b = self.normalized(), other.normalized()
        w = self.widths_mev
        d = np.concatenate([[0.0], np.cumsum((a.values - b.values) * w)])  # CDF difference at edges
        d0, d1 = d[:-1], d[1:]
        same = d0 * d1 >= 0  # |d| is linear in the bin, or crosses zero once
        denom = np.where(same, 1.0, np.abs(d0) + np.abs(d1))
        per_bin = np.where(same, 0.5 * (np.abs(d0) + np.abs(d1)), 0.5 * (d0**2 + d1**2) / denom) * w
        return float(per_bin.sum())

    def signature_fidelity(self, reference: "Spectrum", pristine: "Spectrum") -> float:
        """S = 1 − ‖self − reference‖₁ / ‖reference − pristine‖₁: the share of a defect signature reproduced.

        ``reference`` is the trusted doped spectrum (e.g. the ``full`` tier), ``pristine`` the
        undoped one; 1 is exact, 0 no better than no defect at all. All three on the same edges.
        """
        if not (reference.is_on(self.edges_mev) and pristine.is_on(self.edges_mev)):
            raise DefectnetError("S needs three spectra on the same edges; resample them first")
        w = self.widths_mev
        return float(1 - np.sum(np.abs(self.values - reference.values) * w)
                     / np.sum(np.abs(reference.values - pristine.values) * w))

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        """JSON-safe dict (lists of Python floats, exact for float64); ``errors`` only when known."""
        d = {"edges_mev": self.edges_mev.tolist(), "values": self.values.tolist(),
             "partials": {el: p.tolist() for el, p in self.partials.items()},
             "kind": self.kind, "meta": copy.deepcopy(self.meta)}
        if self.errors is not None:
            d["errors"] = self.errors.tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Spectrum":
        unknown = set(d) - {"edges_mev", "values", "partials", "kind", "meta", "errors"}
        if unknown or not {"edges_mev", "values"} <= set(d):
            raise DefectnetError(f"a spectrum dict needs edges_mev and values (unknown keys {sorted(unknown)})")
        return cls(d["edges_mev"], d["values"], d.get("partials"), kind=d.get("kind", "total"), meta=d.get("meta"),
                   errors=d.get("errors"))


#: A file's bins are "coarser" than a grid's where they are wider than this many of its bins.
COARSER = 1.5


def onto_grid(spectrum: Spectrum, grid) -> Spectrum:
    """``spectrum`` (as read from a file) on the bins of ``grid`` (an EnergyGrid or edges, meV).

    Where the file's points are at least as fine as the grid, its bins are averaged into the
    grid's (:meth:`Spectrum.resample`, which averages noise). Where they are coarser (a file
    on uniform 0.5 meV points read onto a grid of 0.15 meV bins at low energies), averaging
    would give a staircase: each file bin a flat step over several grid bins, with jumps the
    sampled density does not have. A phonon density of states is continuous, so there the
    density is interpolated linearly between the file's points, as the file samples it. A
    spectrum already on the grid's bins is returned unchanged.
    """
    edges = grid.edges if hasattr(grid, "edges") else np.asarray(grid, dtype=float)
    averaged = spectrum.resample(edges)
    if spectrum.is_on(edges) or spectrum.values.size < 2:
        return averaged
    centres, widths = 0.5 * (edges[1:] + edges[:-1]), np.diff(edges)
    src_c, src_w = spectrum.centers_mev, spectrum.widths_mev
    coarse = (np.interp(centres, src_c, src_w) > COARSER * widths) & (centres >= src_c[0]) & (centres <= src_c[-1])
    if not np.any(coarse):
        return averaged
    values = np.where(coarse, np.interp(centres, src_c, spectrum.values), averaged.values)
    return Spectrum(edges, values, kind=spectrum.kind, meta={**averaged.meta, "interpolated_bins": int(coarse.sum())})
