"""Plausibility of an answer: what the model was trained on, and whether the answer explains the doped spectrum."""

from __future__ import annotations

import numpy as np

#: What the model was trained on (model card, "Known limits"): at most 25 at.% of dopants in all,
#: and at most 6 dopant species per sample (examples/generate-reference.yaml, n_dopants [1, 6]).
MAX_TOTAL_FRACTION = 0.25
MAX_DOPANTS = 6
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


def unexplained_warning(fit: dict, *, limit: float = MAX_UNEXPLAINED, noise_share: float = 0.0) -> str | None:
    """The warning when the basis' best fit of the candidates leaves more than ``limit`` of ‖Δ‖ unexplained.

    ``fit`` is the ``fit`` of :func:`defectnet.unmix.unmix`'s result: ``residual_fraction`` and
    ``residual_range_mev``. ``noise_share``: the share of ‖Δ‖ that noise accounts for, which no basis
    explains; it is taken off in quadrature (‖r‖² − ‖noise‖²) before the comparison with ``limit``,
    which was set on noiseless simulations.
    """
    share = fit.get("residual_fraction")
    if share is None:
        return None
    beyond_noise = float(np.sqrt(max(share ** 2 - noise_share ** 2, 0.0)))
    if not beyond_noise > limit:
        return None
    lo, hi = fit.get("residual_range_mev") or (float("nan"), float("nan"))
    noise = f", {100 * beyond_noise:.0f} % beyond its noise" if noise_share > 0.05 else ""
    return (f"the candidates' signatures leave {100 * share:.0f} % of the signature (‖r‖/‖Δ‖) unexplained{noise}, half "
            f"of it at {lo:.1f}–{hi:.1f} meV (a complete list leaves ≤ {100 * limit:.0f} % in 99 % of simulated tests): a "
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
