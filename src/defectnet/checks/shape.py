"""Measures of a spectrum's shape: band edge, flat background, W1 distances (at an energy scale), noise, roughness."""

from __future__ import annotations

import numpy as np

from defectnet.checks.plausibility import LOW_QUANTILE
from defectnet.checks.signal import NOISE_WINDOW
from defectnet.prediction import extent_mev
from defectnet.spectrum import BAND_EDGE_QUANTILE

#: The energy scales searched when a measured spectrum is put on the simulated host's axis (MLIPs
#: soften phonons by up to ~20 %; a wider search would match unlike hosts).
SCALE_BOUNDS = (0.7, 1.4)
#: A spectrum whose last 2 % of rows still average this share of its peak is cut: it ends before its band edge.
CUT_SHARE = 0.05


def band_edge(spectrum) -> float:
    """A spectrum's band edge, meV: the energy below which 99.5 % of its area lies (zero rows
    and a weak tail do not move it), as :func:`defectnet.unmix.band_edge_mev` on the spectrum's own
    bins, above its flat background (:func:`above_background`)."""
    return extent_mev(above_background(spectrum), BAND_EDGE_QUANTILE)


def above_background(spectrum):
    """``spectrum`` less a flat background, if it has one: what stands above m + 3s, where m is the
    median of the upper half of its energy range and s its scatter (1.48 × the median absolute
    deviation). The upper half is a flat background when m > 0 and either s < m/4, or, for a noisy
    one (counts of a weak background: s ~ m), it is flat through its noise (:func:`noisy_flat`). A
    spectrum that falls to zero, or is cut inside its bands (its upper half has a trend), is returned
    as is."""
    v, e = spectrum.values, spectrum.centers_mev
    upper = v[e > 0.5 * (e[0] + e[-1])]
    level = float(np.median(upper)) if upper.size else 0.0
    scatter = 1.4826 * float(np.median(np.abs(upper - level))) if upper.size else 0.0
    if not level > 0 or (scatter > 0.25 * level and not noisy_flat(upper, level, scatter)):
        return spectrum
    return type(spectrum)(spectrum.edges_mev, np.clip(v - level - 3 * scatter, 0, None), kind=spectrum.kind)


def noisy_flat(values, level: float, scatter: float) -> bool:
    """Whether ``values`` (the upper half of a spectrum, median ``level``, scatter ``scatter``) are a
    constant above 0 seen through noise: at least 16 points a quarter, quarter medians within 4 standard
    errors of each other (a median's is 1.25 s / √n) and within half the level, and ``level`` 4 of
    its standard errors above 0."""
    quarters = np.array_split(np.asarray(values, float), 4)
    if min(len(q) for q in quarters) < 16:  # too few points to tell a background from a band's flank
        return False
    medians = [float(np.median(q)) for q in quarters]
    spread_se = 1.2533 * scatter / np.sqrt(min(len(q) for q in quarters))
    return (max(medians) - min(medians) <= min(4 * spread_se, 0.5 * level)
            and level >= 4 * 1.2533 * scatter / np.sqrt(len(values)))


def is_cut(spectrum) -> bool:
    """Whether the spectrum stops while its intensity is still high (its 99.5 % quantile is then its end,
    not a band edge)."""
    v = above_background(spectrum).values
    n = max(1, v.size // 50)
    return bool(np.mean(v[-n:]) > CUT_SHARE * np.max(v))


def scaled_distance(measured, reference, *, bounds=SCALE_BOUNDS, step: float = 0.001, cut: bool = False) -> dict:
    """The energy scale s that best puts ``measured`` on ``reference``'s axis, and how far apart they are.

    Minimises the Wasserstein-1 distance between ``measured`` with energies × s and
    ``reference`` (both unit area, on the reference's bins) over s in ``bounds`` in steps
    of ``step``. W1 compares whole spectra, so broadening differences barely move the optimum.
    A ``cut`` measurement (:func:`is_cut`) is compared with the part of the reference it covers.

    Returns
    -------
    dict
        ``scale``; ``w1_unscaled_mev`` (at s = 1) and ``w1_mev`` (at s), meV; ``at_bound``:
        True when the best s is a bound of the search (the two are then unlike at any scale).
    """
    grid = np.arange(bounds[0], bounds[1] + step / 2, step)
    dist = scaled_w1(measured, reference, grid, cut=cut)
    i = int(np.argmin(dist))
    return {"scale": float(grid[i]), "w1_unscaled_mev": float(scaled_w1(measured, reference, [1.0], cut=cut)[0]),
            "w1_mev": float(dist[i]), "at_bound": i in (0, grid.size - 1)}


def cumulative(spectrum) -> np.ndarray:
    """∫ values dE from the first edge to each edge, shape (bins + 1,): the unnormalised CDF, linear within a bin."""
    return np.concatenate([[0.0], np.cumsum(spectrum.values * spectrum.widths_mev)])


def w1_of_cdfs(x, a, b) -> np.ndarray:
    """Wasserstein-1 distance ∫|a − b| dE (meV) of two CDFs ``a``, ``b`` (..., m) given at the points ``x`` (m,)
    and linear between them (piecewise-constant densities): exact, as :meth:`Spectrum.wasserstein1_mev`."""
    d = np.asarray(a) - np.asarray(b)
    d0, d1 = d[..., :-1], d[..., 1:]
    same = d0 * d1 >= 0  # |d| is linear in the bin, or crosses zero once
    denom = np.where(same, 1.0, np.abs(d0) + np.abs(d1))
    return np.sum(np.where(same, 0.5 * (np.abs(d0) + np.abs(d1)), 0.5 * (d0 ** 2 + d1 ** 2) / denom) * np.diff(x), axis=-1)


def scaled_w1(measured, reference, factors, *, cut: bool = False) -> np.ndarray:
    """W1 distance (meV) of ``measured`` with energies × each of ``factors`` from ``reference``, both unit area on
    the reference's bins (the part of them the scaled measurement reaches when it is ``cut``); inf where fewer than
    three edges, or no area, are left. Shape (len(factors),)."""
    f = np.asarray(factors, dtype=float)
    x, ref = reference.edges_mev, cumulative(reference)
    moved = np.interp(x[None, :] / f[:, None], measured.edges_mev, cumulative(measured))  # CDF of measured × f at x
    n = np.count_nonzero(x[None, :] <= measured.edges_mev[-1] * f[:, None], axis=1) if cut else np.full(f.size, x.size)
    last = np.maximum(n, 1)[:, None] - 1
    a = moved - moved[:, :1]
    b = ref[None, :] - ref[0]
    area_a, area_b = np.take_along_axis(a, last, 1), b[:, last[:, 0]].T
    inside = np.arange(x.size)[None, :] < n[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = np.where(inside, a / area_a, 0.0), np.where(inside, b / area_b, 0.0)
    out = w1_of_cdfs(x, a, b)
    bad = (n < 3) | ~(area_a[:, 0] > 0) | ~(area_b[:, 0] > 0)
    return np.where(bad, np.inf, out)


def tail_share(spectrum, energy_mev: float) -> float:
    """The share of ``spectrum``'s area (above its flat background, :func:`above_background`) above ``energy_mev``."""
    s = above_background(spectrum)
    c = cumulative(s)
    return float(1 - np.interp(energy_mev, s.edges_mev, c) / c[-1]) if c[-1] > 0 else 0.0


def w1_noise(spectrum) -> float:
    """An estimate of how much the noise of ``spectrum`` moves its W1 distance (meV) from any other spectrum.

    The variance of each bin's content is estimated from the bin-to-bin scatter, as in
    :func:`signal_against_noise` (the second difference over :data:`NOISE_WINDOW` bins, / 6);
    the normalised CDF's error at each edge is then a Brownian bridge (the total area is
    fixed), of variance (1 − F)²·S + F²·(S_total − S) with S the summed variance below the
    edge and F the CDF there, and E|error| = √(2/π)·σ is integrated over the energy axis.
    A smooth spectrum gives almost 0; one with 30 % counting noise on 640 bins ~1 % of its band edge.
    """
    area = spectrum.area()
    v, w = spectrum.values / area if area > 0 else spectrum.values, spectrum.widths_mev
    if v.size < 5:
        return 0.0
    second = v[:-2] - 2 * v[1:-1] + v[2:]
    local = np.convolve(second ** 2 / 6, np.ones(min(NOISE_WINDOW, second.size)) / min(NOISE_WINDOW, second.size),
                        mode="same")
    var = np.concatenate([[0.0], np.cumsum(np.r_[local[0], local, local[-1]] * w ** 2)])
    cdf = np.concatenate([[0.0], np.cumsum(v * w)])
    sd = np.sqrt(np.clip((1 - cdf) ** 2 * var + cdf ** 2 * (var[-1] - var), 0, None))
    return float(np.sum(0.5 * (sd[:-1] + sd[1:]) * w) * np.sqrt(2 / np.pi))


def roughness(spectrum) -> float:
    """The share of a spectrum's norm² that is bin-to-bin scatter: Σ (second difference)² / 6 over
    Σ values² (for noise independent from bin to bin the second difference has 6× its variance;
    a spectrum sampled finer than its features has almost none). 0 for a straight line."""
    v = spectrum.values
    if v.size < 3 or not np.any(v[1:-1]):
        return 0.0
    v = v / np.max(np.abs(v))  # (values near the float limit would overflow when squared)
    second = v[:-2] - 2 * v[1:-1] + v[2:]
    return float(np.sum(second ** 2) / 6 / np.sum(v[1:-1] ** 2))


def in_band_curve(pristine, doped, points, *, factors=None, shifts=None) -> np.ndarray:
    """W1 distance (meV) between ``pristine`` and ``doped`` with energies × each of ``factors`` (or + each of
    ``shifts``, meV), both over the energies ``points`` (the first to the last) and renormalised there.
    Shape (len(factors or shifts),)."""
    x = np.asarray(points, dtype=float)
    moved = (x[None, :] / np.asarray(factors, dtype=float)[:, None] if shifts is None
             else x[None, :] - np.asarray(shifts, dtype=float)[:, None])
    a = np.interp(x, pristine.edges_mev, cumulative(pristine))
    b = np.interp(moved, doped.edges_mev, cumulative(doped))
    a, b = a - a[0], b - b[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = w1_of_cdfs(x, a / a[-1], b / b[:, -1:])
    return np.where(b[:, -1] > 0, out, np.inf)


def _peakedness(v: np.ndarray, w: np.ndarray) -> float:
    """∫ v² dE of a unit-area density ``v`` on bins of widths ``w``, less what its bin-to-bin noise adds
    (Σ (second difference)² / 6 · w, as in :func:`signal_against_noise`); a larger value is a more peaked spectrum."""
    second = v[:-2] - 2 * v[1:-1] + v[2:] if v.size >= 3 else np.zeros(0)
    return float(np.sum(v ** 2 * w) - np.sum(second ** 2 / 6 * w[1:-1]))


def in_band_shape(pristine, doped) -> dict:
    """How the doped spectrum's in-band shape differs from its pristine's: both already on the same bins below the
    pristine's band edge (:func:`doped_consistency`), each renormalised there.

    ``sharpening``: the doped spectrum's :func:`_peakedness` over the pristine's (≤ 1 when the
    doping only broadens the host's bands); ``low_quantile_ratio``: the energy below which the
    doped holds :data:`LOW_QUANTILE` of its in-band area over the pristine's (< 1 when weight moved
    to lower energies)."""
    w = pristine.widths_mev
    a, b = (s.values / np.sum(s.values * w) for s in (pristine, doped))
    out = {"sharpening": None, "low_quantile_ratio": None}
    peak_p = _peakedness(a, w)
    if peak_p > 0:
        out["sharpening"] = _peakedness(b, w) / peak_p
    x = pristine.edges_mev
    ca, cb = (np.concatenate([[0.0], np.cumsum(v * w)]) for v in (a, b))
    q_p, q_d = np.interp(LOW_QUANTILE, ca, x), np.interp(LOW_QUANTILE, cb, x)
    if q_p > 0:
        out["low_quantile_ratio"] = float(q_d / q_p)
    return out
