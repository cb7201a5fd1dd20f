"""What :func:`defectnet.predict.predict_defects` checks in its input and its answer.

* **Candidates** (:func:`split_candidate`, :func:`model_candidates`, :func:`basis_candidates`):
  real elements of the dopant vocabulary; not an element of the host, unless it is an
  antisite named with its site (``Ga@As``) and simulated so in the signature basis.
* **Signal against noise** (:func:`signal_against_noise`): is the defect signature
  Δ = doped − pristine larger than the noise of the two spectra? If not, no dopant is
  reported, whatever the network or the unmixing says (:func:`no_signature_warning`).
* **Plausibility** (:func:`plausibility_warnings`): a total concentration or a number of
  detected dopants beyond what the model was trained on.

User errors raise :class:`~defectnet.errors.DefectnetError` (one line); doubts about an
answer are returned as warning texts, which the prediction lists and which make it
untrusted (``trusted: false`` in its JSON). ``docs/predict-checks.md`` describes them for users.
"""

from __future__ import annotations

import numpy as np

from defectnet.elements import check_element
from defectnet.errors import DefectnetError

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
                          f"changes nothing, and {how}")


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
