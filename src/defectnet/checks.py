"""What :func:`defectnet.predict.predict_defects` checks in its input and its answer.

* **Candidates** (:func:`split_candidate`, :func:`model_candidates`, :func:`basis_candidates`):
  real elements of the dopant vocabulary; not an element of the host, unless it is an
  antisite named with its site (``Ga@As``) and simulated so in the signature basis.
* **Signal against noise** (:func:`signal_against_noise`): is the defect signature
  Δ = doped − pristine larger than the noise of the two spectra? If not, no dopant is
  reported, whatever the network or the unmixing says (:func:`no_signature_warning`).
* **Plausibility** (:func:`plausibility_warnings`): a total concentration or a number of
  detected dopants beyond what the model was trained on; (:func:`change_unexplained_warning`)
  a doped spectrum that differs from its pristine below the band edge more, with sharper bands
  or with more weight at its lowest energies than a doping of the answer's total can make it.
* **Consistency with the host** (:func:`host_consistency`, :func:`doped_consistency`,
  :func:`swap_consistency`, :func:`scale_warning`): a measured pristine unlike the host's
  simulated one; a doped spectrum unlike its pristine, on a stretched or shifted energy axis,
  or not a phonon spectrum; the two files swapped; spectra read at another energy scale.

User errors raise :class:`~defectnet.errors.DefectnetError` (one line); doubts about an
answer are returned as warning texts, which the prediction lists and which make it
untrusted (``trusted: false`` in its JSON). ``docs/predict-checks.md`` describes them for users.
"""

from __future__ import annotations

import numpy as np

from defectnet.elements import check_element
from defectnet.errors import DefectnetError
from defectnet.prediction import extent_mev
from defectnet.spectrum import BAND_EDGE_QUANTILE

#: Signal against noise: Δ is a signature when ‖Δ‖² > (1 + NOISE_SIGMAS·√(2/n_eff)) × its noise estimate.
NOISE_SIGMAS = 6.0
#: ... and the noise can be estimated only from at least this many effective bins.
MIN_NOISE_BINS = 10
#: Bins of the running mean that gives the local noise variance (for n_eff).
NOISE_WINDOW = 15
#: Δ smaller than this share of the doped spectrum's norm is no signature at all (round-off).
ROUND_OFF = 1e-6
#: What the model was trained on (model card, "Known limits"): at most 25 at.% of dopants in all,
#: and at most 6 dopant species per sample (examples/generate-reference.yaml, n_dopants [1, 6]).
MAX_TOTAL_FRACTION = 0.25
MAX_DOPANTS = 6
#: The energy scales searched when a measured spectrum is put on the simulated host's axis (MLIPs
#: soften phonons by up to ~20 %; a wider search would match unlike hosts).
SCALE_BOUNDS = (0.7, 1.4)
#: Host consistency: the measured pristine at its best energy scale may be at most this W1 distance from the
#: host's simulated pristine, as a share of the simulated band edge. benchmarks/consistency.py: a host's
#: supercell spectrum against its q-mesh PDoS is ≤ 0.011 (236 hosts); the bundled GaAs pristine against the
#: 235 other committed hosts is above 0.05 for 212 of them (nearest ZnSe 0.015, ZnTe 0.024, Ge 0.030).
MAX_HOST_DISTANCE = 0.05
#: A doped spectrum below its pristine's band edge (both renormalised there) may be at most this W1 distance
#: from it, as a share of that band edge. benchmarks/consistency.py: the 18,434 committed doped spectra (up to
#: 30 at.% of dopants) are ≤ 0.20 from their pristine; the bundled GaAs pristine against the 235 other hosts'
#: is above 0.25 for 76 of them (the softer ones: their bands crowd below GaAs's).
MAX_IN_BAND_DISTANCE = 0.25
#: A doped spectrum that is its pristine's bands on a stretched energy axis is an energy-scale or unit error: the
#: in-band distance of doped (energies × s) and pristine is searched over these s (steps of 0.2 %) ...
STRETCH_SEARCH = np.exp(np.arange(np.log(0.5), np.log(2.0) + 1e-9, 0.002))
#: ... and the doped one is stretched when the best s is at least this factor from 1 ...
MIN_STRETCH = 1.1
#: ... and the in-band distance there (a share of the pristine's band edge) is below this × |ln s|.
#: benchmarks/consistency.py: of the 18,747 committed doped spectra, those whose best s is ≥ 1.1 from 1 all have a
#: distance ≥ 0.027 × |ln s| (the least: RbBr with 25 at.% of dopants, as if stretched ×1.17 with 0.0044 left);
#: the bundled GaAs doped spectrum stretched ×1.2 has 0.0018 left at ×1.2.
MAX_STRETCH_RESIDUAL = 0.025
#: Nor does a dopant shift it: the same search over doped energies + δ, δ in SHIFT_SEARCH (shares of the pristine's
#: band edge); shifted when |δ| ≥ MIN_SHIFT and the in-band distance there is below MAX_SHIFT_RESIDUAL × |δ|.
#: benchmarks/consistency.py: committed doped spectra whose best δ is ≥ 0.05 from 0 all keep ≥ 0.088 × |δ| (the
#: least: MgS with 18 at.% of dopants, best at δ = 0.105 with 0.0092 left).
SHIFT_SEARCH = np.arange(-0.25, 0.25 + 1e-9, 0.0025)
MIN_SHIFT = 0.05
MAX_SHIFT_RESIDUAL = 0.08
#: The measured pristine, read at the energy scale it is given at, must match the host's simulated spectrum best
#: within this factor of that scale: a host's own supercell spectrum matches its q-mesh PDoS at ×0.998–1.007
#: (238 committed hosts); beyond, the spectra are read on another energy scale than the model's simulations.
SCALE_TOLERANCE = 1.05
#: Swapped files: the doped spectrum nearer the host's simulated pristine than the pristine one by more than
#: MAX_CLOSER + CLOSER_NOISE_SIGMAS × their noise (:func:`w1_noise`), as shares of the band edge ...
#: benchmarks/consistency.py: committed pairs, the right way round against the host's q-mesh PDoS, are at most
#: 0.0003 nearer (the doped one is further, as doping moves it away); with 10 % or 30 % counting noise none passes
#: MAX_CLOSER + 2 × the noise estimate.
MAX_CLOSER = 0.002
CLOSER_NOISE_SIGMAS = 2.0
#: ... or the pristine spectrum holding more of its area above the host's band edge than the doped one by more than
#: this share (dopants add local modes there). Committed pairs the right way round: at most 0.006, 0.012 with 30 %
#: counting noise.
MAX_TAIL_EXCESS = 0.015
#: A doping changes its spectrum below the pristine's band edge (W1, as a share of that edge) by at most this × its
#: total concentration: benchmarks/consistency.py, ≤ 2.89 × for every committed doped spectrum (99.9 % ≤ 1.8 ×). An
#: answer whose total is smaller than the change needs (less twice the noise of the two) does not explain it.
MAX_IN_BAND_PER_FRACTION = 3.0
#: Disorder broadens a host's bands: the mass and force-constant differences a dopant brings scatter the host's
#: phonons, so its van Hove peaks are smeared, never sharpened; only the dopants' own modes can add a sharper
#: feature, in proportion to how many there are. So the doped spectrum's peakedness below the pristine's band edge
#: (∫ĝ² dE of each, renormalised there, less the part its bin-to-bin noise explains) may exceed the pristine's by at
#: most SHARPENING_SLACK + MAX_SHARPENING_PER_FRACTION × the answer's total concentration. Committed doped spectra
#: (18,795, benchmarks/consistency.py): every one within 0.024 + 4.3 × its total (the most: TiTe2, a layered host
#: whose dopants add sharp in-band modes; 98 % are at most as peaked as their pristine).
MAX_SHARPENING_PER_FRACTION = 5.0
SHARPENING_SLACK = 0.05
#: A crystal's density of states starts as E² (Debye) at low energy, set by its sound velocities, which a doping of x
#: changes by O(x): heavy or weakly bound dopants add resonant modes below the host's acoustic peak, moving weight
#: down. The energy below which the doped spectrum holds LOW_QUANTILE of its in-band area may lie at most a factor
#: exp(LOW_SHIFT + LOW_SHIFT_PER_FRACTION × total) below the pristine's: all 18,795 committed doped spectra do (the
#: nearest the bound: RbI at 4.4 at.%, 0.55×; CaS at 7.4 at.%, 0.51×; CuSe at 22.5 at.%, 0.34×; at ≤ 1 at.% they reach
#: 0.74×, the few lowest modes of a supercell spectrum moving).
LOW_QUANTILE = 0.05
LOW_SHIFT = 0.5
LOW_SHIFT_PER_FRACTION = 3.0
#: A spectrum whose bin-to-bin scatter holds more than this share of its norm² is no phonon spectrum:
#: committed spectra ≤ 0.014, the GaAs example with 20 % counting noise 0.02–0.06 (30 %: 0.02–0.16, median 0.08,
#: above 0.1 in 18 % of 200 draws), uniform random numbers 0.25.
MAX_ROUGHNESS = 0.1
#: Units: a pristine spectrum's band edge must lie within these factors of the host's simulated band edge
#: (MLIPs soften phonons by up to ~25 %) ...
PRISTINE_EDGE_WINDOW = (1 / 1.6, 1.6)
#: ... a doped one's within these: light dopants' local modes push the 99.5 % quantile of the committed doped
#: spectra up to 3.9× their pristine's (99 % of them ≤ 2.5×, none below 0.9×).
DOPED_EDGE_WINDOW = (1 / 1.6, 4.0)
#: The units a spectrum without a stated unit may be in (eV only when stated).
GUESSED_UNITS = ("meV", "THz", "cm-1")
#: A spectrum whose last 2 % of rows still average this share of its peak is cut: it ends before its band edge.
CUT_SHARE = 0.05


# ----------------------------------------------------------------------------- candidates
def split_candidate(text: str) -> tuple[str, str | None]:
    """(element, site or None) of a candidate ``"Si"`` or ``"Ga@As"``; the element must be in the dopant vocabulary."""
    element, at, site = text.partition("@")
    if at and not site:
        raise DefectnetError(f"candidate {text!r} names no site after '@'; expected El or El@Site, e.g. Si or Si@Ga")
    check_element(element, dopant=True)
    if site:
        check_element(site)
    return element, site or None


def _host_element_error(element: str, host: str, how: str) -> DefectnetError:
    return DefectnetError(f"candidate {element} is an element of the host {host}: as a dopant on its own site it "
                          f"changes nothing, and {how}; expected candidates that are not elements of {host}")


def model_candidates(candidates, composition: dict, host: str) -> list[str]:
    """The elements of ``candidates`` for the model: no site-qualified candidate, no host element.

    The model reports one concentration per element whatever the site, so it cannot tell a
    host element on another site (an antisite) from the host's own atoms."""
    out = []
    for c in candidates:
        element, site = split_candidate(c)
        if site:
            raise DefectnetError(f"site-qualified candidate {c!r}: the model reports one concentration per element, "
                                 f"whatever its site; give {element}, or use a signature basis simulated with {c} "
                                 f"(defectnet basis {host} --candidates {c}, then predict --basis)")
        if element in composition:
            raise _host_element_error(element, host, "the model cannot tell it on another site (an antisite) from "
                                      "the host's own atoms; an antisite needs a signature basis simulated with it, "
                                      f"e.g. defectnet basis {host} --candidates {element}@<site>, then predict "
                                      f"--basis with --candidates {element}@<site>")
        out.append(element)
    return out


def basis_candidates(candidates, basis, composition: dict, host: str) -> list[str]:
    """The elements of ``candidates`` to unmix against ``basis``.

    ``El`` takes the basis' signature of El, wherever it was simulated; ``El@Site`` must be
    what the basis simulated (``defectnet basis ... --candidates El@Site``). A host element is
    accepted only that way: as an antisite named with its site, simulated so in the basis."""
    simulated = {spec.partition("@")[0]: spec for spec in basis.config.get("candidates") or ()}
    out = []
    for c in candidates:
        element, site = split_candidate(c)
        recorded = simulated.get(element)
        if element in composition and not site:
            raise _host_element_error(element, host, f"on another site (an antisite) it must be named with its site, "
                                      f"e.g. {element}@<site>, and simulated so in the basis")
        if site and recorded != c:
            what = f"simulated {recorded}" if recorded and "@" in recorded else (
                f"simulated {element} on the site it chose" if recorded else f"has no {element}")
            raise DefectnetError(f"candidate {c}: the basis of {basis.host} {what}; expected one of its candidates "
                                 f"({', '.join(basis.config.get('candidates') or basis.elements)})")
        out.append(element)
    return out


def check_in_basis(candidates, basis, host: str, source: str | None = None) -> None:
    """Raise unless every candidate (but those without a stable position) has a signature in ``basis``."""
    missing = [c for c in candidates if c not in basis.elements and c not in basis.failed]
    if not missing:
        return
    other = (f"; and the basis is of {basis.host}, the host given is {host}: expected a basis of {host} (defectnet "
             f"basis {host} --candidates {','.join(missing)} --out basis.npz)" if basis.host != host else "")
    raise DefectnetError(f"candidates {missing} are not in the basis of {basis.host} ({', '.join(basis.elements)}); "
                         f"expected candidates it simulated{other}", source=source)


# ----------------------------------------------------------------------------- signal against noise
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


def plausibility_warnings(rows, *, max_total: float = MAX_TOTAL_FRACTION, max_dopants: int = MAX_DOPANTS) -> list[str]:
    """Warnings for an answer outside what the model was trained on: too much dopant in all, too many dopants."""
    out = []
    total = float(sum(r["concentration"] for r in rows))
    if total > max_total:
        out.append(f"the predicted concentrations add up to {100 * total:.1f} at.%, above the {100 * max_total:g} at.% "
                   "the model was trained on: not a dilute doping it can read (check the host, the energy unit and "
                   "the energy scale)")
    detected = [r["element"] for r in rows if r["detected"]]
    if len(detected) > max_dopants:
        out.append(f"{len(detected)} dopants detected ({', '.join(detected)}), more than the {max_dopants} per sample "
                   "the model was trained on")
    return out


#: ‖r‖/‖Δ‖ above which the best fit with the listed candidates leaves the signature unexplained. On the
#: never-seen hosts of benchmarks/conditioned.py (875 spectra with a dopant >= 1 at.%,
#: benchmarks/results/unexplained/) it exceeds 0.3 for 0.9 % of complete candidate lists and for 66 %
#: of lists with the largest true dopant withheld (same-potential simulated spectra).
MAX_UNEXPLAINED = 0.3


def unexplained_warning(fit: dict, *, limit: float = MAX_UNEXPLAINED) -> str | None:
    """The warning when the basis' best fit of the candidates leaves more than ``limit`` of ‖Δ‖ unexplained.

    ``fit`` is the ``fit`` of :func:`defectnet.unmix.unmix`'s result: ``residual_fraction`` and ``residual_range_mev``.
    """
    share = fit.get("residual_fraction")
    if share is None or not share > limit:
        return None
    lo, hi = fit.get("residual_range_mev") or (float("nan"), float("nan"))
    return (f"the candidates' signatures leave {100 * share:.0f} % of the signature (‖r‖/‖Δ‖) unexplained, half of it "
            f"at {lo:.1f}–{hi:.1f} meV (a complete list leaves ≤ {100 * limit:.0f} % in 99 % of simulated tests): a "
            "dopant not among the candidates may be present, or the basis' modes are off (--stretch, --lvm)")


def change_unexplained_warning(doped_check: dict, rows) -> str | None:
    """A warning when the answer's total concentration is too small for how the doped spectrum differs from its
    pristine below the band edge: by more (W1, :data:`MAX_IN_BAND_PER_FRACTION`, less twice their noise), with
    sharper bands (:func:`sharpening_text`) or with more weight at its lowest energies (:func:`low_energy_text`)
    than a doping of that total gives; the texts found, joined; None when there are none."""
    if not doped_check or doped_check.get("in_band") is None:
        return None
    total = float(sum(r["concentration"] for r in rows))
    found = [t for t in (_in_band_text(doped_check, total), sharpening_text(doped_check, total),
                         low_energy_text(doped_check, total)) if t]
    return "; and ".join(found) or None


def sharpening_text(doped_check: dict, total: float) -> str | None:
    """Why the answer (``total``, a fraction) cannot explain the doped spectrum's bands being sharper than the
    pristine's (:data:`MAX_SHARPENING_PER_FRACTION`); None when it can."""
    ratio = doped_check.get("sharpening")
    bound = 1 + SHARPENING_SLACK + MAX_SHARPENING_PER_FRACTION * total
    if ratio is None or ratio <= bound:
        return None
    return (f"the doped spectrum's bands are {ratio:.2f}× as peaked as its pristine's (∫g² below the band edge), but "
            f"a doping broadens a host's bands, and one of {100 * total:.2f} at.% in all (the answer's) sharpens them "
            f"at most to {bound:.2f}× (committed doped spectra: ≤ 1.02 + 4.3 × their total) — check that the doped file "
            "holds a density of states (not its square, nor another quantity) at the same resolution as the pristine")


def low_energy_text(doped_check: dict, total: float) -> str | None:
    """Why the answer (``total``) cannot explain the doped spectrum's weight at its lowest energies (the
    :data:`LOW_QUANTILE` quantile of its in-band area below :data:`LOW_SHIFT` and
    :data:`LOW_SHIFT_PER_FRACTION` allow); None when it can."""
    ratio = doped_check.get("low_quantile_ratio")
    bound = float(np.exp(-(LOW_SHIFT + LOW_SHIFT_PER_FRACTION * total)))
    if ratio is None or ratio >= bound:
        return None
    return (f"the doped spectrum holds its first {100 * LOW_QUANTILE:g} % of in-band area by {ratio:.2f}× the energy "
            f"the pristine does, but a crystal's spectrum starts as E² (its sound velocities), which a doping of "
            f"{100 * total:.2f} at.% in all (the answer's) lowers to at most {bound:.2f}× (every committed doped "
            "spectrum) — check the doped file's low-energy part (elastic line, background) and that it is a phonon "
            "density of states")


def _in_band_text(doped_check: dict, total: float) -> str | None:
    need = (doped_check["in_band"] - 2 * doped_check.get("noise", 0.0)) / MAX_IN_BAND_PER_FRACTION
    if need <= total:
        return None
    return (f"the doped spectrum differs from its pristine below the band edge by {doped_check['in_band']:.3f} of it "
            f"(W1), which takes at least {100 * need:.1f} at.% of dopants in all (committed doped spectra differ by at "
            f"most {MAX_IN_BAND_PER_FRACTION:g} × their total concentration), but the answer adds up to "
            f"{100 * total:.2f} at.%: it does not explain the change — the concentrations are too low, a dopant is "
            "missing from the candidates, or the doped file is not a doping of this host's pristine")


# ----------------------------------------------------------------------------- consistency with the host
def band_edge(spectrum) -> float:
    """A spectrum's band edge, meV: the energy below which 99.5 % of its area lies (zero rows
    and a weak tail do not move it), as :func:`defectnet.unmix.band_edge_mev` on the spectrum's own
    bins, above its flat background (:func:`above_background`)."""
    return extent_mev(above_background(spectrum), BAND_EDGE_QUANTILE)


def above_background(spectrum):
    """``spectrum`` less a flat background, if it has one: when the upper half of its energy range is
    flat (a median m > 0 with a scatter s, 1.48 × the median absolute deviation, below m/4), what
    stands above m + 3s; a spectrum that falls to zero, or is cut inside its bands, is returned as is."""
    v, e = spectrum.values, spectrum.centers_mev
    upper = v[e > 0.5 * (e[0] + e[-1])]
    level = float(np.median(upper)) if upper.size else 0.0
    scatter = 1.4826 * float(np.median(np.abs(upper - level))) if upper.size else 0.0
    if not level > 0 or scatter > 0.25 * level:
        return spectrum
    return type(spectrum)(spectrum.edges_mev, np.clip(v - level - 3 * scatter, 0, None), kind=spectrum.kind)


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


def host_consistency(measured, simulated) -> dict:
    """How far the measured pristine spectrum is from the host's simulated one, at the best energy scale.

    ``distance`` is the W1 distance of :func:`scaled_distance` as a share of the simulated
    spectrum's :func:`band_edge`, so that hosts of any stiffness share one threshold;
    ``consistent`` is ``distance <= MAX_HOST_DISTANCE``. A flat background is taken off the
    measurement first (:func:`above_background`); a cut measurement is compared over the range
    it covers (its coverage is another check, :func:`coverage_warnings`).
    """
    fit = scaled_distance(above_background(measured), simulated, cut=is_cut(measured))
    edge = band_edge(simulated)
    distance = fit["w1_mev"] / edge
    return fit | {"band_edge_mev": edge, "distance": distance, "threshold": MAX_HOST_DISTANCE,
                  "consistent": bool(distance <= MAX_HOST_DISTANCE)}


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


def swap_consistency(pristine, doped, reference, host: dict, doped_host: dict | None = None) -> dict:
    """Whether the pristine and doped spectra were given the right way round.

    Two signs that they were swapped, each set so that every committed pair (the right way
    round, with and without 30 % counting noise) passes (``benchmarks/consistency.py``):

    * the doped spectrum is nearer the host's simulated pristine ``reference`` than the
      pristine one is: ``closer`` = the pristine's :func:`host_consistency` distance (``host``)
      less the doped one's, above :data:`MAX_CLOSER` + :data:`CLOSER_NOISE_SIGMAS` × their
      noise (:func:`w1_noise`, as a share of the band edge);
    * the pristine spectrum holds modes above the host's band edge that the doped one lacks
      (dopants add local modes there, they do not remove them): ``tail_excess`` = its share of
      area above the reference's :func:`band_edge` (put on the measured axis by ``host``'s
      scale) less the doped one's, above :data:`MAX_TAIL_EXCESS`. Not judged when either
      spectrum stops below that edge.

    ``swapped`` is True when either holds. ``doped_host``: the doped spectrum's
    :func:`host_consistency`, if already computed.
    """
    edge = band_edge(reference) / host["scale"]
    doped_host = doped_host or host_consistency(doped, reference)
    noise = np.hypot(w1_noise(pristine), w1_noise(doped)) * host["scale"] / band_edge(reference)
    closer = host["distance"] - doped_host["distance"]
    covered = min(pristine.edges_mev[-1], doped.edges_mev[-1]) > edge
    t_p, t_d = (tail_share(pristine, edge), tail_share(doped, edge)) if covered else (None, None)
    by_distance = bool(closer > MAX_CLOSER + CLOSER_NOISE_SIGMAS * noise)
    by_tail = bool(covered and t_p - t_d > MAX_TAIL_EXCESS)
    return {"pristine_distance": host["distance"], "doped_distance": doped_host["distance"], "closer": closer,
            "noise": float(noise), "threshold": MAX_CLOSER + CLOSER_NOISE_SIGMAS * float(noise),
            "edge_mev": edge, "pristine_tail": t_p, "doped_tail": t_d,
            "tail_excess": None if t_p is None else t_p - t_d, "tail_threshold": MAX_TAIL_EXCESS,
            "swapped": by_distance or by_tail, "by_distance": by_distance, "by_tail": by_tail}


def swap_problem(check: dict, pristine: str, doped: str, host: str, against: str) -> str | None:
    """One line when ``pristine`` and ``doped`` look swapped (None if not)."""
    if not check.get("swapped"):
        return None
    why = []
    if check["by_distance"]:
        why.append(f"{doped} is nearer {against} pristine of {host} ({check['doped_distance']:.4f} of its band edge, W1 "
                   f"at the best energy scale) than {pristine} is ({check['pristine_distance']:.4f}), by more than "
                   f"{check['threshold']:.4f} (their noise)")
    if check["by_tail"]:
        why.append(f"{pristine} holds {100 * check['pristine_tail']:.1f} % of its area above the host's band edge "
                   f"{check['edge_mev']:.1f} meV (where dopants put their local modes) and {doped} only "
                   f"{100 * check['doped_tail']:.1f} %")
    return (f"{pristine} (--pristine) and {doped} (--doped) look swapped: " + "; and ".join(why)
            + "; expected the pristine spectrum to be the nearer to the host and the doped one to hold at least as "
            "much above its bands — swap --pristine and --doped, or pass --force to answer anyway")


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


def doped_consistency(pristine, doped) -> dict:
    """Whether the doped spectrum can be a dilute doping of its pristine (same energy axis).

    A dopant moves some modes above the host's bands (its local modes, up to most of the
    area at 30 at.% of light dopants) but leaves the shape of the host's bands much as it was.
    So both are compared below the pristine's :func:`band_edge`, on the bins of the coarser
    one, each renormalised there: ``in_band`` is their W1 distance as a share of that band
    edge. ``roughness`` (:func:`roughness`) of each tells a spectrum from random numbers.

    A dopant does not stretch or shift the energy axis either: the same comparison is made with the
    doped energies × s for s in :data:`STRETCH_SEARCH` (:func:`in_band_curve`), and a doped
    spectrum that is its pristine's bands on a stretched axis — the best s at least
    :data:`MIN_STRETCH` away from 1, and the in-band distance there below
    :data:`MAX_STRETCH_RESIDUAL` × |ln s| — is ``stretched``: an energy-scale or unit error,
    not a doping. ``stretch`` is 1 / the best s, the factor by which the doped energies
    exceed the pristine's, ``stretch_residual`` the in-band distance there. Likewise with the
    doped energies + δ (:data:`SHIFT_SEARCH`, :data:`MIN_SHIFT`, :data:`MAX_SHIFT_RESIDUAL`):
    ``shifted`` — an offset of the energy zero; ``shift_mev`` is how far the doped energies
    sit above the pristine's.

    ``consistent`` is False when ``in_band`` > MAX_IN_BAND_DISTANCE, a roughness > MAX_ROUGHNESS,
    ``stretched`` or ``shifted``.
    """
    edge = band_edge(pristine)
    rough = {"pristine": roughness(pristine), "doped": roughness(doped)}
    out = {"band_edge_mev": edge, "in_band_w1_mev": None, "in_band": None, "threshold": MAX_IN_BAND_DISTANCE,
           "stretch": None, "stretch_residual": None, "stretched": None, "shift_mev": None, "shift_residual": None,
           "shifted": None, "sharpening": None, "low_quantile_ratio": None,
           "roughness": rough, "max_roughness": MAX_ROUGHNESS,
           "consistent": False if max(rough.values()) > MAX_ROUGHNESS else None}
    lo, top = max(pristine.edges_mev[0], doped.edges_mev[0]), min(edge, doped.edges_mev[-1])
    edges = min((s.edges_mev[(s.edges_mev > lo) & (s.edges_mev < top)] for s in (pristine, doped)), key=len)
    edges = np.concatenate([[lo], edges, [top]])
    if edges.size < 3:
        return out
    p, d = pristine.resample(edges), doped.resample(edges)
    if not (p.area() > 0 and d.area() > 0):
        return out
    w1 = p.wasserstein1_mev(d)
    noise = float(np.hypot(w1_noise(pristine), w1_noise(doped))) / edge
    curve = in_band_curve(pristine, doped, edges, factors=STRETCH_SEARCH) / edge
    i = int(np.argmin(curve))
    best, residual = float(STRETCH_SEARCH[i]), float(curve[i])
    stretched = bool(abs(np.log(best)) >= np.log(MIN_STRETCH) and residual < MAX_STRETCH_RESIDUAL * abs(np.log(best)))
    curve = in_band_curve(pristine, doped, edges, shifts=SHIFT_SEARCH * edge) / edge
    j = int(np.argmin(curve))
    shift, shift_residual = float(SHIFT_SEARCH[j]), float(curve[j])
    shifted = bool(abs(shift) >= MIN_SHIFT and shift_residual < MAX_SHIFT_RESIDUAL * abs(shift))
    ok = out["consistent"] is not False and w1 / edge <= MAX_IN_BAND_DISTANCE and not stretched and not shifted
    shape = in_band_shape(p, d)
    return out | shape | {"in_band_w1_mev": w1, "in_band": w1 / edge, "noise": noise, "stretch": 1 / best, "stretch_residual": residual,
                  "stretched": stretched, "shift_mev": -shift * edge, "shift_residual": shift_residual,
                  "shifted": shifted, "consistent": bool(ok)}


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


def host_problem(check: dict, label: str, host: str, against: str) -> str | None:
    """One line when the measured pristine ``label`` is unlike ``host``'s simulated one (None if alike)."""
    if check.get("consistent") is not False:
        return None
    bound = f" (a bound of the search {SCALE_BOUNDS[0]:g}–{SCALE_BOUNDS[1]:g})" if check["at_bound"] else ""
    return (f"{label} is not a pristine spectrum of {host}: at its best energy scale ×{check['scale']:.2f}{bound} it is "
            f"{check['w1_mev']:.2f} meV (W1) from {against} pristine of {host}, {check['distance']:.3f} of its band edge "
            f"{check['band_edge_mev']:.1f} meV; expected ≤ {MAX_HOST_DISTANCE:g} (a host's own spectra are within "
            "0.011) — check --host, the file and its energy unit, or pass --force to answer anyway")


def scale_warning(check: dict, label: str, host: str, against: str, applied: float) -> str | None:
    """A warning when the measured pristine ``label``, read at the energy scale ``applied``, matches the host's
    simulated one best at another scale (by more than :data:`SCALE_TOLERANCE`); None otherwise."""
    if check.get("consistent") is not True or abs(np.log(check["scale"])) <= np.log(SCALE_TOLERANCE):
        return None
    return (f"{label} matches {against} pristine of {host} best with its energies × {check['scale']:.3f} more (W1 "
            f"{check['w1_unscaled_mev']:.2f} → {check['w1_mev']:.2f} meV; a host's own spectra match within "
            f"×{SCALE_TOLERANCE:g}): both spectra are read on another energy scale than the model's simulations, so "
            f"dopant modes are read at the wrong energies — pass --energy-scale auto to fit it (here "
            f"{applied * check['scale']:.3g})")


def doped_problem(check: dict, doped: str, pristine: str) -> str | None:
    """One line when ``doped`` cannot be a dilute doping of ``pristine`` (None if it can)."""
    if check.get("consistent") is not False:
        return None
    rough = {k: v for k, v in check["roughness"].items() if v > MAX_ROUGHNESS}
    if rough:
        what, share = next(iter(rough.items()))
        return (f"{doped if what == 'doped' else pristine} does not look like a phonon spectrum: bin-to-bin scatter "
                f"holds {100 * share:.0f} % of its norm² (expected ≤ {100 * MAX_ROUGHNESS:.0f} %; measured spectra "
                "with 20 % counting noise hold 2–6 %) — check the file, or pass --force to answer anyway")
    if check.get("stretched"):
        return (f"{doped} looks like {pristine} with its energies × {check['stretch']:.2f}: below the pristine's band "
                f"edge {check['band_edge_mev']:.1f} meV the two are {check['stretch_residual']:.4f} of it apart (W1) at "
                f"that stretch and {check['in_band']:.3f} as given; expected a doping to leave the host's bands where "
                f"they are (committed doped spectra stretched ≥ ×{MIN_STRETCH:g} from their best match stay ≥ "
                f"{MAX_STRETCH_RESIDUAL:g} × |ln stretch| apart) — check the energy unit and --energy-scale of both "
                "files, or pass --force to answer anyway")
    if check.get("shifted"):
        return (f"{doped} looks like {pristine} with its energies shifted by {check['shift_mev']:+.2f} meV: below the "
                f"pristine's band edge {check['band_edge_mev']:.1f} meV the two are {check['shift_residual']:.4f} of it "
                f"apart (W1) at that shift and {check['in_band']:.3f} as given; expected a doping to leave the host's "
                f"bands where they are (committed doped spectra shifted ≥ {MIN_SHIFT:g} of the band edge from their "
                f"best match stay ≥ {MAX_SHIFT_RESIDUAL:g} × the shift apart) — check the energy zero of both files, or "
                "pass --force to answer anyway")
    return (f"{doped} is not a dilute doping of {pristine}: below the pristine's band edge "
            f"{check['band_edge_mev']:.1f} meV the two are {check['in_band_w1_mev']:.2f} meV (W1) apart, "
            f"{check['in_band']:.3f} of it; expected ≤ {MAX_IN_BAND_DISTANCE:g} (doped spectra of up to 30 at.% are "
            "within 0.20 of their pristine) — check that both are of the same host, in the same energy unit and "
            "scale, or pass --force to answer anyway")


def is_cut(spectrum) -> bool:
    """Whether the spectrum stops while its intensity is still high (its 99.5 % quantile is then its end,
    not a band edge)."""
    v = above_background(spectrum).values
    n = max(1, v.size // 50)
    return bool(np.mean(v[-n:]) > CUT_SHARE * np.max(v))


def choose_unit(edge_mev: float, unit: str, sources: dict, host_edge_mev: float, *, window, label: str,
                host: str, cut: bool = False) -> tuple[str, str | None]:
    """The energy unit of a spectrum, from what is stated and the host's band edge.

    ``edge_mev`` is the spectrum's :func:`band_edge` read in ``unit``; ``sources`` {where:
    unit} what the file and the caller state (:func:`defectnet.io.read_spectrum`'s
    ``meta["unit_sources"]``). One stated unit is kept if it puts the band edge within
    ``window`` (factors) of the host's simulated ``host_edge_mev``, and is an error naming
    both numbers if not; units stated differently are decided by the band edge among
    themselves; without any, among :data:`GUESSED_UNITS`. A ``cut`` spectrum (:func:`is_cut`)
    has its band edge at or past its end, so only an edge above the window is wrong.
    Returns (unit, a note or None).
    """
    from defectnet.units import ENERGY_UNIT_TO_MEV

    stated = list(dict.fromkeys(sources.values()))
    pool = stated or list(GUESSED_UNITS)
    edges = {u: edge_mev * ENERGY_UNIT_TO_MEV[u] / ENERGY_UNIT_TO_MEV[unit]
             for u in dict.fromkeys([*pool, *GUESSED_UNITS])}
    ratio = {u: e / host_edge_mev for u, e in edges.items()}
    low = 0.0 if cut else window[0]
    inside = [u for u in pool if low <= ratio[u] <= window[1]]
    where = ", ".join(f"{u} {edges[u]:.1f} meV" for u in pool)
    host_text = f"{host}'s simulated band edge {host_edge_mev:.1f} meV"
    if not inside:
        fits = [u for u in GUESSED_UNITS if low <= ratio[u] <= window[1]]
        hint = f"; in {fits[0]} it would be {edges[fits[0]]:.1f} meV" if fits else ""
        said = ", ".join(f"{k} says {v}" for k, v in sources.items()) or "no unit stated"
        raise DefectnetError(f"{label}: its band edge (99.5 % of the area) read as {where} ({said}) is far from "
                             f"{host_text}; expected within ×{window[1]:g}{hint} — check --unit, the header, or --host")
    best = min(inside, key=lambda u: abs(np.log(ratio[u])))
    because = (f"its band edge is then {edges[best]:.1f} meV against {host_text}"
               + (" (the spectrum is cut, so that is a lower bound and the unit a guess)" if cut else ""))
    if not stated:
        others = ", ".join(f"{u} {edges[u]:.1f}" for u in GUESSED_UNITS if u != best)
        return best, f"{label}: energy unit not stated, assumed {best} from the host: {because} (as {others} meV)"
    if len(stated) > 1:
        said = ", ".join(f"{k} says {v}" for k, v in sources.items())
        return best, f"{label}: the energy unit is stated differently ({said}); {best} won: {because} ({where})"
    return best, None


def coverage_warnings(ends: dict, host_edge_mev: float, host: str, modes: dict | None = None) -> list[str]:
    """Warnings for spectra that stop too early: ``ends`` {label: last energy, meV} inside the host's
    bands (below its simulated band edge), or below ``modes`` {candidate: the energy below which 99 %
    of its simulated signature lies}."""
    out = [f"{label} stops at {end:.1f} meV, inside the bands of {host} (its simulated band edge is "
           f"{host_edge_mev:.1f} meV): the rest of the spectrum is missing and dopants are read from part of it"
           for label, end in ends.items() if end < host_edge_mev]
    top = min(ends.values())
    late = {el: e for el, e in (modes or {}).items() if e > top}
    if late:
        out.append(f"the spectra stop at {top:.1f} meV, below where the simulated signatures of "
                   + ", ".join(f"{el} ({e:.1f} meV)" for el, e in late.items())
                   + " reach 99 % of their area: those candidates are read from part of their signature")
    return out
