"""Read the doped and pristine spectra, check them, and align them on an estimator's energy grid.

Every correction made to the input comes back as a :class:`~defectnet.analysis.result.Message`
beside the spectra; nothing is written into an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from defectnet.analysis.config import PredictConfig
from defectnet.analysis.result import Message
from defectnet.checks import (DOPED_EDGE_WINDOW, MAX_ROUGHNESS, PRISTINE_EDGE_WINDOW, band_edge, choose_unit,
                              coverage_warnings, doped_consistency, doped_problem, host_consistency, host_problem,
                              is_cut, roughness, scale_warning, scaled_distance, signal_against_noise, swap_consistency,
                              swap_problem)
from defectnet.errors import DefectnetError
from defectnet.prediction import extent_mev
from defectnet.spectrum import Spectrum, onto_grid

#: Share of the pristine spectrum's area that the input range must cover (the rest may be cut).
COVERAGE = 0.995


@dataclass(frozen=True)
class Frame:
    """What the spectra are read against and put on, decided before they are read.

    Attributes
    ----------
    host : str
        The host's name, as messages call it.
    composition : dict
        Host atomic fractions {element: fraction}.
    kind : {'total', 'gpdos'}
        What the estimator reads.
    grid : EnergyGrid
        The estimator's energy grid (meV).
    reference : Spectrum or None
        The host's simulated pristine spectrum (per meV); None when it could not be computed
        (the input is then not checked against it).
    against : str
        Who simulated ``reference``, for messages (``"the sevennet"``, ``"the basis'"``).
    modes : dict or None
        {candidate: energy (meV) below which 99 % of its simulated signature lies}: a spectrum
        stopping below it is warned about.
    """

    host: str
    composition: dict
    kind: str
    grid: object
    reference: Spectrum | None
    against: str
    modes: dict | None = None


@dataclass(frozen=True)
class AlignedSpectra:
    """The two spectra an estimator reads: on its grid, zero outside the range both cover, unit area.

    Attributes
    ----------
    pristine, doped : Spectrum
        Per meV on the estimator's grid (``values`` of shape (B,)).
    host : str
    composition : dict
        Host atomic fractions {element: fraction}.
    kind : {'total', 'gpdos'}
    noise_share : float
        The share of ‖Δ‖ that noise accounts for (the signal check's noise / norm, on the files' own
        bins; 0 when unknown): what no basis can explain (:func:`~defectnet.checks.unexplained_warning`).
    """

    pristine: Spectrum
    doped: Spectrum
    host: str
    composition: dict
    kind: str
    noise_share: float = 0.0


@dataclass(frozen=True)
class Aligned:
    """:func:`align`'s answer: the spectra, the config as applied (a fitted energy scale filled in), the
    numbers behind the checks and the notes and warnings of reading and checking."""

    spectra: AlignedSpectra
    config: PredictConfig
    checks: dict
    messages: tuple


def align(doped, pristine, config: PredictConfig, frame: Frame) -> Aligned:
    """Read ``doped`` and ``pristine`` (files or Spectrum; ``pristine=None`` is ``frame.reference``) in their
    energy unit and scale, check them against each other and the host's simulated ``frame.reference`` and
    put them on ``frame.grid``. A refusal raises a one-line :class:`DefectnetError` unless ``config.force``,
    where it becomes a warning."""
    notes = []
    if config.energy_scale is None:
        config, note = fit_scale(config, pristine, frame)
        notes.append(note)
    d, said = load_spectrum(doped, config, frame.kind, frame.composition, "doped", frame.reference, frame.host)
    notes += said
    p = frame.reference
    if pristine is not None:
        p, said = load_spectrum(pristine, config, frame.kind, frame.composition, "pristine", frame.reference,
                                frame.host)
        notes += said
    checks, problems, warned = check_inputs(p, d, doped, pristine, config, frame)
    p, d, said = common_range(p, d, frame.grid)
    notes += said
    p, d, said = measured_errors(p, d, doped, pristine)
    notes += said
    if problems and not config.force:
        raise DefectnetError(problems[0].text)
    signal = checks["signal"]
    noise_share = float(signal["noise"] / signal["norm"]) if signal["norm"] > 0 else 0.0
    return Aligned(AlignedSpectra(p, d, frame.host, frame.composition, frame.kind, noise_share), config, checks,
                   tuple(notes + problems + warned))


def check_inputs(p: Spectrum, d: Spectrum, doped, pristine, config: PredictConfig, frame: Frame) -> tuple:
    """(checks, problems, warnings) of the spectra as read: the numbers of :mod:`defectnet.checks`, the
    refusals (:class:`Message` warnings that raise unless forced) and the doubts."""
    against, host = frame.against, frame.host
    labels = {"doped": _label(doped, "doped"), "pristine": _label(pristine, f"{against} pristine of {host}")}
    checks = {"signal": signal_against_noise(p, d), "doped": doped_consistency(p, d)}
    problems = [("unlike-pristine", doped_problem(checks["doped"], labels["doped"], labels["pristine"]))]
    warned = []
    if frame.reference is not None:
        if pristine is not None:
            checks["host"] = host_consistency(p, frame.reference)
            checks["swap"] = swap_consistency(p, d, frame.reference, checks["host"])
            problems[:0] = [("swapped", swap_problem(checks["swap"], labels["pristine"], labels["doped"], host,
                                                     against)),
                            ("unlike-host", host_problem(checks["host"], labels["pristine"], host, against))]
            warned.append(("energy-scale", scale_warning(checks["host"], labels["pristine"], host, against,
                                                         config.energy_scale or 1.0)))
        ends = {labels[k]: s.edges_mev[-1] for k, s in (("pristine", p), ("doped", d))}
        warned += [("coverage", w) for w in coverage_warnings(ends, band_edge(frame.reference), host, frame.modes)]
    return (checks, [Message.warning(code, text) for code, text in problems if text],
            [Message.warning(code, text) for code, text in warned if text])


def _label(src, default: str) -> str:
    return default if src is None or isinstance(src, Spectrum) else str(src)


def load_spectrum(src, config: PredictConfig, kind: str, composition: dict, what: str, reference=None,
                  host: str = "the host") -> tuple[Spectrum, list[Message]]:
    """(a spectrum, the notes on reading it) from a file or object, of ``kind``, energies × ``energy_scale``;
    a file's energy unit checked against (or, unstated, chosen by) the band edge of the host's simulated
    ``reference``. ``what`` is ``"doped"`` or ``"pristine"``."""
    notes = []
    if isinstance(src, Spectrum):
        s, label = src, what
    else:
        s, label, notes = _read_file(src, config, kind, what, reference, host)
    if kind == "gpdos" and s.kind != "gpdos" and str(s.meta.get("column", "")).lower() != "gpdos":
        if s.partials and set(composition) <= set(s.partials) and set(s.partials) <= set(composition):
            s = s.neutron_weighted(composition)
            notes.append(Message.note("gpdos-from-partials",
                                      f"{label}: GPDoS made from its per-element partials with neutron weights"))
        else:
            notes.append(Message.note("read-as-gpdos",
                                      f"{label}: intensity taken as a neutron-weighted GPDoS (what INS measures)"))
    if config.energy_scale not in (None, 1.0):
        s = s.scale_energy(config.energy_scale)
        notes.append(Message.note("energy-scaled",
                                  f"{label}: energies multiplied by {config.energy_scale:g} (energy scale)"))
    if not s.area() > 0:
        raise DefectnetError(f"{label}: the spectrum is zero everywhere; expected a phonon density of states")
    if s.errors is not None and not np.all(s.errors > 0):
        i = int(np.argmin(s.errors))
        raise DefectnetError(f"{label}: error {s.errors[i]:g} at {s.centers_mev[i]:.3g} meV; expected every 1σ > 0 "
                             "(the errors weight the fit: a bin without counts needs an error too)")
    return s, notes


def _read_file(src, config: PredictConfig, kind: str, what: str, reference, host: str) -> tuple:
    """(spectrum, label, notes) of a spectrum file: negative energies dropped, unit checked, what the reader did said."""
    from defectnet.io import read_spectrum

    label = str(src)
    s = None
    if kind == "gpdos":  # our own files carry both: prefer the GPDoS column
        try:
            s = read_spectrum(src, unit=config.unit, column="gpdos")
        except DefectnetError as exc:
            if "no column named" not in str(exc):
                raise
    s, notes = positive_energies(s or read_spectrum(src, unit=config.unit), label)
    if not s.area() > 0:
        raise DefectnetError(f"{label}: the spectrum is zero everywhere; expected a phonon density of states")
    if reference is not None and roughness(s) <= MAX_ROUGHNESS:  # random numbers have no unit to tell
        s, said = physical_unit(s, label, config, reference, what, host)
        notes += said
    elif v := s.meta.get("unit_inferred"):
        notes.append(Message.note("unit-assumed", f"{label}: energy unit not stated, assumed {v['unit']} ({v['rule']}); "
                                                  "pass --unit to override"))
    if s.meta.get("sorted_on_read"):
        notes.append(Message.note("rows-sorted", f"{label}: rows were not sorted by energy; sorted"))
    if s.meta.get("clipped_negatives"):
        notes.append(Message.note("negatives-clipped", f"{label}: {s.meta['clipped_negatives']} tiny negative values "
                                                       "(numerical noise) set to 0"))
    return s, label, notes


def positive_energies(s: Spectrum, label: str) -> tuple[Spectrum, list[Message]]:
    """``s`` without its rows at negative energies (the energy-gain side of a measurement), and a note saying so."""
    n = s.meta.get("negative_energy_rows")
    if not n:
        return s, []
    kept = s.edges_mev[s.edges_mev > 0]
    if kept.size < 2:
        raise DefectnetError(f"{label}: every row is at a negative energy; expected phonon energies ≥ 0")
    note = f"{label}: {n} rows at negative energies (down to {s.edges_mev[0]:.3g} meV) dropped"
    return s.resample(np.concatenate([[0.0], kept])), [Message.note("negative-energies-dropped", note)]


def physical_unit(s: Spectrum, label: str, config: PredictConfig, reference: Spectrum, what: str,
                  host: str) -> tuple[Spectrum, list[Message]]:
    """``s`` in the energy unit :func:`defectnet.checks.choose_unit` picks from what is stated and the
    host's band edge (``reference``'s), and a note saying why when it was not stated, or stated differently."""
    from defectnet.units import ENERGY_UNIT_TO_MEV

    window = DOPED_EDGE_WINDOW if what == "doped" else PRISTINE_EDGE_WINDOW
    read = s.meta["unit"]
    unit, note = choose_unit(band_edge(s) * (config.energy_scale or 1.0), read, s.meta.get("unit_sources") or {},
                             band_edge(reference), window=window, label=label, host=host, cut=is_cut(s))
    notes = [Message.note("unit-chosen", note)] if note else []
    if unit == read:
        return s, notes
    r = ENERGY_UNIT_TO_MEV[unit] / ENERGY_UNIT_TO_MEV[read]
    return Spectrum(s.edges_mev * r, s.values / r, {el: v / r for el, v in s.partials.items()}, kind=s.kind,
                    meta=dict(s.meta, unit=unit), errors=None if s.errors is None else s.errors / r), notes


def fit_energy_scale(measured: Spectrum, reference: Spectrum, *, bounds=(0.7, 1.4), step: float = 0.001):
    """The factor s that best puts ``measured`` energies onto ``reference``'s scale.

    Minimises the Wasserstein-1 distance between ``measured`` with energies × s and
    ``reference`` (both unit area, on the reference's edges) over a grid of s in ``bounds``
    (:func:`defectnet.checks.scaled_distance`). W1 compares whole spectra, so broadening
    differences barely move the optimum.

    Returns
    -------
    (scale, w1_before_mev, w1_after_mev)
    """
    fit = scaled_distance(measured, reference, bounds=bounds, step=step)
    if fit["at_bound"]:
        raise DefectnetError(f"the energy scale fit ran into its bound {fit['scale']:g}; the measured and computed "
                             "spectra may not be of the same host — pass --energy-scale explicitly")
    return fit["scale"], fit["w1_unscaled_mev"], fit["w1_mev"]


def fit_scale(config: PredictConfig, pristine, frame: Frame) -> tuple[PredictConfig, Message]:
    """(``config`` with the energy scale that puts the measured ``pristine`` on ``frame.reference``'s axis,
    the note saying so)."""
    if pristine is None:
        raise DefectnetError("fitting the energy scale needs a measured pristine spectrum (--pristine)")
    if frame.reference is None:
        raise DefectnetError("fitting the energy scale needs the host's simulated spectrum, which could not be "
                             "computed; pass --energy-scale explicitly")
    measured, _ = load_spectrum(pristine, replace(config, energy_scale=1.0), frame.kind, frame.composition,
                                "pristine", frame.reference, frame.host)
    scale, before, after = fit_energy_scale(measured, frame.reference)
    note = (f"energy scale {scale:.3f} fitted to {frame.against} pristine spectrum (W1 distance {before:.2f} → "
            f"{after:.2f} meV)")
    return replace(config, energy_scale=scale), Message.note("energy-scale-fitted", note)


def common_range(p: Spectrum, d: Spectrum, grid) -> tuple[Spectrum, Spectrum, list[Message]]:
    """Both spectra on ``grid``, zero outside the range both cover, unit area, negatives clipped unless the spectrum
    has errors; a note when a low range is cut.

    The range must reach past ``COVERAGE`` of each spectrum's area, or the comparison
    would be made on part of the host's spectrum only.
    """
    lo = max(p.edges_mev[0], d.edges_mev[0])
    hi = min(p.edges_mev[-1], d.edges_mev[-1])
    for s, other, name in ((p, d, "pristine"), (d, p, "doped")):
        need = extent_mev(s, COVERAGE)
        if other.edges_mev[-1] < need:
            src = other.meta.get("source", "the other spectrum")
            raise DefectnetError(f"{src} stops at {other.edges_mev[-1]:.1f} meV but the {name} spectrum extends to "
                                 f"{need:.1f} meV; expected both to cover the host's whole phonon spectrum")
    if hi > grid.edges[-1]:
        lost = [s for s in (p, d) if extent_mev(s, COVERAGE) > grid.edges[-1]]
        if lost:
            raise DefectnetError(f"{lost[0].meta.get('source', 'a spectrum')} extends past {grid.edges[-1]:.0f} meV, "
                                 "the end of the model's grid")
    out = []
    keep = (grid.centers >= lo) & (grid.centers <= hi)
    for s in (p, d):
        # a coarser file interpolated, not stepped (defectnet.spectrum.onto_grid); with errors, negatives are counting
        # noise the errors describe, kept (clipped, they would bias the weighted fit where the density is ~0)
        v = onto_grid(s, grid).values
        v = np.where(keep, v if s.errors is not None else np.clip(v, 0.0, None), 0.0)
        area = float(np.sum(v * grid.widths))
        errors = None if s.errors is None else errors_on_grid(s, grid, keep) / area
        out.append(Spectrum.on_grid(grid, v / area, kind=s.kind, meta={"source": s.meta.get("source")}, errors=errors))
    notes = []
    if lo > grid.edges[0] + 0.5:
        notes.append(Message.note("range-cut", f"both spectra set to zero below {lo:.1f} meV, where one of them has "
                                               "no data"))
    return out[0], out[1], notes


def errors_on_grid(s: Spectrum, grid, keep) -> np.ndarray:
    """The 1σ of ``s`` (a file's spectrum with ``errors``) on ``grid``'s bins, as weights of a fit: each grid
    bin gets the information of the file's bins it overlaps, 1/σ_j² = Σ_i overlap_ij / (w_i σ_i²) (meV).

    Where the grid is coarser this is the error of the bin's average (exact for equal errors); where it
    is finer, each file bin's information is shared among the grid bins it spans, not counted once per
    bin (an interpolated file would otherwise weigh as many times as its bins are split). Errors uniform
    per meV thus weigh every grid bin by √(width), as the unweighted fit does. Outside ``keep`` (bool
    (B,), the range both spectra cover, where the values are set to 0) the bins are zeros measured with
    the largest noise density (σ√w) found inside."""
    edges, old = grid.edges, s.edges_mev
    cuts = np.union1d(old, edges)
    cuts = cuts[(cuts >= max(old[0], edges[0])) & (cuts <= min(old[-1], edges[-1]))]
    info = np.zeros(grid.n_bins)
    if cuts.size >= 2:
        mid, length = 0.5 * (cuts[1:] + cuts[:-1]), np.diff(cuts)
        i = np.searchsorted(old, mid, "right") - 1
        j = np.searchsorted(edges, mid, "right") - 1
        info = np.bincount(j, weights=length / (s.widths_mev[i] * s.errors[i] ** 2), minlength=grid.n_bins)
    sigma = np.divide(1.0, np.sqrt(info), out=np.full(grid.n_bins, np.inf), where=info > 0)
    density = sigma * np.sqrt(grid.widths)
    worst = float(np.max(density[keep & np.isfinite(density)], initial=0.0))
    return np.where(keep & np.isfinite(sigma), sigma, worst / np.sqrt(grid.widths))


def measured_errors(p: Spectrum, d: Spectrum, doped, pristine) -> tuple[Spectrum, Spectrum, list[Message]]:
    """The aligned spectra with errors on both or on neither, and a note on which.

    Errors weight a fit of Δ = doped − pristine only when Δ's are known: the doped spectrum's errors,
    and the pristine's, or none when the pristine is simulated (``pristine`` None: it has no counting
    noise, its errors are 0). When one measured file carries errors and the other none, neither is kept, and the
    negatives kept as noise are clipped (unit area again) as in a spectrum without errors."""
    if p.errors is None and d.errors is None:
        return p, d, []
    if d.errors is not None and (p.errors is not None or pristine is None):
        if p.errors is None:
            p = Spectrum(p.edges_mev, p.values, kind=p.kind, meta=p.meta, errors=np.zeros_like(p.values))
        what = "the doped and pristine files'" if pristine is not None else "the doped file's (the simulated pristine: none)"
        return p, d, [Message.note("errors-read", f"1σ errors read: {what}, carried onto the grid (each file bin's "
                                                  "information shared among the grid bins it spans)")]
    has, lacks = (_label(doped, "doped"), _label(pristine, "pristine")) if d.errors is not None else \
        (_label(pristine, "pristine"), _label(doped, "doped"))
    clipped = [np.clip(s.values, 0.0, None) for s in (p, d)]
    drop = [Spectrum(s.edges_mev, v / float(v @ s.widths_mev), kind=s.kind, meta=s.meta) for s, v in zip((p, d), clipped)]
    return drop[0], drop[1], [Message.note("errors-unused", f"{has} carries 1σ errors and {lacks} none: the errors "
                                                            "are not used (Δ's error is unknown)")]
