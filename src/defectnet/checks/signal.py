"""Signal against noise: is the defect signature Δ = doped − pristine larger than the noise of the two?"""

from __future__ import annotations

import numpy as np

#: Signal against noise: Δ is a signature when ‖Δ‖² > (1 + NOISE_SIGMAS·√(2/n_eff)) × its noise estimate.
NOISE_SIGMAS = 6.0
#: ... and the noise can be estimated only from at least this many effective bins.
MIN_NOISE_BINS = 10
#: Bins of the running mean that gives the local noise variance (for n_eff).
NOISE_WINDOW = 15
#: Δ smaller than this share of the doped spectrum's norm is no signature at all (round-off).
ROUND_OFF = 1e-6


def signal_against_noise(pristine, doped) -> dict:
    """Whether Δ = doped − pristine stands above the noise of the two spectra.

    Both spectra are rebinned onto the bins of the coarser of the two (within the energy
    range both cover; rebinning the finer one averages its noise, which keeps it white)
    and normalised to unit area there. No file states its errors here (the spectrum reader
    reads no error column), so the noise is estimated from the high-frequency content of Δ:
    for noise independent from bin to bin with variance σ_i², the second difference
    Δ_{i-1} − 2Δ_i + Δ_{i+1} has variance ≈ 6σ_i² (σ_i slowly varying), so
    Σ (second difference)² / 6 estimates Σ σ_i², the ‖Δ‖² that noise alone would give.
    The ratio R² = ‖Δ‖² / that estimate is ≈ 1 for pure noise (also heteroscedastic, e.g.
    counting noise), and large for a signature, which is smooth on the scale of three bins.

    Assumptions: the noise is uncorrelated between neighbouring bins, and the signature's
    features span three bins or more (a spectrum sampled at least as finely as its
    resolution). Correlated noise (a file interpolated from a coarser one) is
    underestimated, so it reads as a signature — the network's answer is then kept, as
    without this check; a feature one bin wide reads as noise. The test is global, so a
    signature confined to a few bins must stand out against the noise of all of them:
    under white noise of 1 % of the optical peak over 400 points, a local mode holding 2 %
    of the area is a signature (R² ≈ 4 against a threshold R² ≈ 1.5), one holding 1 % is
    just one (R² ≈ 1.6–2.0), and below that it is reported as within the noise.

    Returns
    -------
    dict
        ``norm`` ‖Δ‖₂ and ``noise`` (its estimate under noise alone), densities per meV over
        the bins; ``ratio`` = norm / noise; ``threshold`` — the ratio above which Δ is a
        signature, √(1 + NOISE_SIGMAS·√(2/n_eff)), n_eff the effective number of noisy bins
        (fewer when the noise is concentrated in a few bins); ``bins`` n_eff;
        ``above_noise`` True, False, or None when there are too few bins to tell.
    """
    lo, hi = max(pristine.edges_mev[0], doped.edges_mev[0]), min(pristine.edges_mev[-1], doped.edges_mev[-1])
    edges = min((s.edges_mev[(s.edges_mev >= lo) & (s.edges_mev <= hi)] for s in (pristine, doped)), key=len)
    out = {"norm": 0.0, "noise": 0.0, "ratio": 0.0, "threshold": None, "bins": 0.0, "above_noise": None}
    if edges.size < 4:
        return out
    width = np.diff(edges)
    p, d = (s.resample(edges).values for s in (pristine, doped))
    p, d = (v / np.sum(v * width) if np.sum(v * width) > 0 else v for v in (p, d))
    delta = d - p
    second = delta[:-2] - 2 * delta[1:-1] + delta[2:]
    norm2, noise2 = float(np.sum(delta[1:-1] ** 2)), float(np.sum(second ** 2) / 6)
    window = min(NOISE_WINDOW, second.size)
    local = np.convolve(second ** 2 / 6, np.ones(window) / window, mode="same")
    n_eff = float(local.sum() ** 2 / np.sum(local ** 2)) if np.any(local > 0) else 0.0
    out.update(norm=norm2 ** 0.5, noise=noise2 ** 0.5, bins=n_eff)
    if norm2 <= (ROUND_OFF * np.sqrt(np.sum(d[1:-1] ** 2))) ** 2:
        return out | {"above_noise": False}  # the same spectrum twice, up to round-off
    if n_eff < MIN_NOISE_BINS:
        return out
    threshold = float(np.sqrt(1 + NOISE_SIGMAS * np.sqrt(2 / n_eff)))
    ratio = float(np.sqrt(norm2 / noise2)) if noise2 > 0 else float("inf")
    return out | {"ratio": ratio, "threshold": threshold, "above_noise": bool(ratio > threshold)}


def no_signature_warning(signal: dict, rows) -> str | None:
    """The warning when Δ is within its noise (None otherwise), naming what the answer would have been."""
    if signal.get("above_noise") is not False:
        return None
    said = [f"{r['element']} {100 * r['concentration']:.2f} at.%" for r in rows if r["detected"]]
    size = (f"‖Δ‖ = {signal['norm']:.3g} per meV is {signal['ratio']:.2f}× its noise estimate {signal['noise']:.3g} "
            f"(a signature needs > {signal['threshold']:.2f}×, over {signal['bins']:.0f} effective bins)"
            if signal["threshold"] else f"doped and pristine are the same spectrum (‖Δ‖ = {signal['norm']:.2g} per meV)")
    return (f"no dopant signature above noise: {size}; every candidate is reported absent"
            + (f" (the answer without this check: {', '.join(said)})" if said else ""))
