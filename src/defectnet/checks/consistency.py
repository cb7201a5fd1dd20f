"""Consistency with the host: the measured pristine against the host's simulated one, the doped spectrum against
its pristine, and the two files swapped; each measure with the one-line problem or warning it gives."""

from __future__ import annotations

import numpy as np

from defectnet.checks.shape import (SCALE_BOUNDS, above_background, band_edge, in_band_curve, in_band_shape, is_cut,
                                    roughness, scaled_distance, tail_share, w1_noise)

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
#: A spectrum whose bin-to-bin scatter holds more than this share of its norm² is no phonon spectrum:
#: committed spectra ≤ 0.014, the GaAs example with 20 % counting noise 0.02–0.06 (30 %: 0.02–0.16, median 0.08,
#: above 0.1 in 18 % of 200 draws), uniform random numbers 0.25.
MAX_ROUGHNESS = 0.1


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
