"""Read HDF5 instrument files (h5py): Mantid-processed NeXus 1-D workspaces and NXSPE.

A **Mantid-processed NeXus** file (``SaveNexusProcessed``) holds a workspace as
``mantid_workspace_1/workspace/{axis1, values, errors}``: ``axis1`` the x axis (bin edges or
points, its ``units`` attribute a Mantid unit: ``DeltaE`` / ``Energy`` meV,
``DeltaE_inWavenumber`` / ``Energy_inWavenumber`` cm⁻¹), ``values`` and ``errors`` of shape
(1, n) for a 1-D spectrum (a reduced S(E) or DOS). It is read as it is.

An **NXSPE** file (``SaveNXSPE``) holds S(2θ, E) per detector: ``<entry>/data/{data, error}``
(n_det, n_E), ``data/energy`` (n_E + 1 bin edges, or n_E centres, meV), ``data/polar`` (n_det
scattering angles 2θ, degrees) and ``NXSPE_info/fixed_energy`` (Ei, meV). It is reduced to a
neutron-weighted DOS in the **incoherent one-phonon approximation** (:func:`reduce_nxspe`):

    g(E) ∝ ⟨ S(Q, E) · E · exp(Q²⟨u²⟩) / (Q² [n(E) + 1]) ⟩_detectors

with Q from Ei, E and 2θ, n(E) the Bose factor at the stated temperature and exp(−2W) =
exp(−Q²⟨u²⟩) the Debye–Waller factor, ⟨u²⟩ the mean-square displacement along Q, one value for
all atoms. Assumptions, recorded in ``meta["reduction"]``: one-phonon scattering only — **no
multiphonon or multiple-scattering correction** is applied (no maintained pip-installable
library provides one for measured data: abinslib and euphonic compute intensities from force
constants, and the ``multiphonon`` package of the SNS is distributed through conda only);
incoherent approximation (coherent scattering treated as incoherent, as for a powder averaged
over a wide Q range); the data are S(Q, E), i.e. already multiplied by ki/kf (if
``NXSPE_info/ki_over_kf_scaling`` is 0 the reader multiplies them by ki/kf); masked
detector-bins (NaN, or ≤ -1e29 as in SPE files) are left out of the average. The result is a
``gpdos`` spectrum of arbitrary scale on the file's energy bins above ``e_min_mev`` and below Ei.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import constants as _c

from defectnet.errors import DefectnetError, exception_reason
from defectnet.spectrum import Spectrum
from defectnet.units import ENERGY_UNIT_TO_MEV, to_mev

#: ħ²/(2 m_n) in meV Å²: a neutron of wavevector k (Å⁻¹) has energy E = this × k² (≈ 2.0721).
MEV_A2_PER_K2 = _c.hbar**2 / (2 * _c.m_n) / (1e-3 * _c.electron_volt) * 1e20
KB_MEV_PER_K = _c.k / (1e-3 * _c.electron_volt)  # Boltzmann constant, meV/K
MASK_BELOW = -1e29  # SPE/NXSPE files mark masked detectors with -1e30
NOISE_SIGMAS = 5.0  # a negative value within this many σ of 0 is counting noise: kept (as defectnet.io.ERROR_SIGMAS)
MANTID_UNITS = {"deltae": "meV", "energy": "meV", "deltae_inwavenumber": "cm-1", "energy_inwavenumber": "cm-1"}


@dataclass(frozen=True)
class NxspeReduction:
    """How an NXSPE S(Q, E) is reduced to a DOS (see the module docstring).

    q_min, q_max : float or None
        Q range in Å⁻¹ (``None``: no limit); detector-bins outside are left out.
    temperature_k : float
        Sample temperature for the Bose factor (default 5 K; 0 means n = 0).
    u2_a2 : float
        ⟨u²⟩ along Q in Å² for the Debye–Waller factor exp(−Q²⟨u²⟩) (default 0: no correction).
    e_min_mev : float
        Bins whose centre is at or below this energy (the elastic line) are dropped (default 0).
    """

    q_min: float | None = None
    q_max: float | None = None
    temperature_k: float = 5.0
    u2_a2: float = 0.0
    e_min_mev: float = 0.0

    def __post_init__(self):
        for name in ("temperature_k", "u2_a2", "e_min_mev"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise DefectnetError(f"NXSPE reduction: {name} must be a number ≥ 0, got {v!r}")
        lo, hi = self.q_min or 0.0, math.inf if self.q_max is None else self.q_max
        if not (lo >= 0 and hi > lo):
            raise DefectnetError(f"NXSPE reduction: need 0 ≤ q_min < q_max, got {self.q_min!r}, {self.q_max!r}")


def read_nexus(path, *, unit=None, reduction: NxspeReduction | None = None) -> Spectrum:
    """Read a Mantid-processed NeXus 1-D workspace or an NXSPE file (reduced by ``reduction``)."""
    import h5py

    src = str(path)
    if not Path(path).is_file():
        raise DefectnetError("file not found; expected a NeXus (HDF5) file", source=src)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DefectnetError(f"not a readable HDF5 file ({exception_reason(exc)})", source=src) from None
    with f:
        if "mantid_workspace_1" in f:
            return _read_mantid(f, src, unit)
        entry = next((k for k in f if isinstance(f[k], h5py.Group) and "data" in f[k] and "NXSPE_info" in f[k]),
                     None)
        if entry is None:
            raise DefectnetError("neither a Mantid workspace (mantid_workspace_1/workspace) nor an NXSPE entry "
                                 "(<entry>/data and <entry>/NXSPE_info) in the file", source=src)
        return reduce_nxspe(_nxspe_arrays(f[entry], src), reduction or NxspeReduction(), src)


def _dataset(group, name, src, ndim=None) -> np.ndarray:
    """The float array ``group/name``; a missing dataset or a wrong rank is a one-line error."""
    where = f"{group.name.strip('/')}/{name}".lstrip("/")
    if name not in group:
        raise DefectnetError(f"no dataset {where}", source=src)
    try:
        a = np.asarray(group[name][()], dtype=float)
    except (TypeError, ValueError, AttributeError) as exc:
        raise DefectnetError(f"{where} is not numeric ({exception_reason(exc)})", source=src) from None
    if ndim is not None and a.ndim != ndim:
        raise DefectnetError(f"{where} has shape {a.shape}; expected {ndim} dimension(s)", source=src)
    return a


def _attr(obj, name) -> str | None:
    v = obj.attrs.get(name)
    if v is None:
        return None
    v = v[0] if isinstance(v, np.ndarray) and v.size == 1 else v
    return v.decode() if isinstance(v, bytes) else str(v)


def _read_mantid(f, src, unit) -> Spectrum:
    """A one-spectrum Mantid workspace as a Spectrum (density per meV, errors kept)."""
    if "mantid_workspace_2" in f:
        raise DefectnetError("the file holds several Mantid workspaces; expected one", source=src)
    if "workspace" not in f["mantid_workspace_1"]:
        raise DefectnetError("no group mantid_workspace_1/workspace", source=src)
    ws = f["mantid_workspace_1/workspace"]
    values, errors = _dataset(ws, "values", src), _dataset(ws, "errors", src)
    x = _dataset(ws, "axis1", src, ndim=1)
    values, errors = np.atleast_2d(values), np.atleast_2d(errors)
    if values.ndim != 2 or values.shape[0] != 1:
        raise DefectnetError(f"mantid_workspace_1/workspace/values has shape {values.shape}; expected one spectrum "
                             "(1, n): save a single spectrum", source=src)
    if errors.shape != values.shape:
        raise DefectnetError(f"errors shape {errors.shape} differs from values shape {values.shape}", source=src)
    y, e, n = values[0], errors[0], values.shape[1]
    if x.size not in (n, n + 1):
        raise DefectnetError(f"axis1 has {x.size} values for {n} bins; expected {n + 1} edges or {n} points",
                             source=src)
    unit = _mantid_unit(unit, _attr(ws["axis1"], "units"), src)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(np.isfinite(e))):
        raise DefectnetError("NaN or inf in axis1, values or errors; expected finite numbers", source=src)
    if x[-1] < x[0]:  # descending axis: flip everything
        x, y, e = x[::-1], y[::-1], e[::-1]
    if np.any(np.diff(x) <= 0):
        raise DefectnetError("axis1 is not strictly monotonic", source=src)
    meta = {"source": src, "format": "mantid-nexus", "unit": unit}
    if x.size == n + 1 and _attr(ws["values"], "distribution") in ("0", "False", "false"):
        y, e = y / np.diff(x), e / np.diff(x)  # counts per bin → per unit energy
        meta["divided_by_bin_width"] = True
    y, e = checked_negatives(y, e, meta, src)
    factor = ENERGY_UNIT_TO_MEV[unit]  # density per unit → per meV divides by meV-per-unit
    if x.size == n + 1:
        return Spectrum(x * factor, y / factor, kind="total", meta=meta, errors=e / factor)
    return Spectrum.from_points(x * factor, y / factor, kind="total", meta=meta, errors=e / factor)


def _mantid_unit(unit, axis_units, src) -> str:
    """The energy unit (a key of ENERGY_UNIT_TO_MEV): ``unit`` if given, else axis1's Mantid unit."""
    if unit is None:
        if axis_units is None or axis_units.strip().lower() not in MANTID_UNITS:
            raise DefectnetError(f"axis1 units {axis_units!r} are not an energy unit this reader knows "
                                 f"({', '.join(sorted(MANTID_UNITS))}); pass unit=", source=src)
        return MANTID_UNITS[axis_units.strip().lower()]
    try:
        factor = float(to_mev(1.0, unit))
    except DefectnetError as exc:
        raise DefectnetError(str(exc), source=src) from None
    return next(k for k, v in ENERGY_UNIT_TO_MEV.items() if v == factor)


def checked_negatives(values, errors, meta, src):
    """Keep negatives within NOISE_SIGMAS σ of 0, counting noise that the errors describe (clipping them would bias
    a fit weighted by them where the density is ~0; count in ``meta["negatives_within_errors"]``); refuse larger."""
    bad = values < -NOISE_SIGMAS * errors
    if bad.any():
        i = int(np.argmax(bad))
        raise DefectnetError(f"negative intensity {values[i]:g} ± {errors[i]:g} in bin {i} (more than "
                             f"{NOISE_SIGMAS:g}σ below 0); expected a non-negative density", source=src)
    if np.any(errors < 0):
        raise DefectnetError(f"negative error {errors[int(np.argmax(errors < 0))]:g}; expected 1σ ≥ 0", source=src)
    if np.any(values < 0):
        meta["negatives_within_errors"] = int(np.sum(values < 0))
    return values, errors


@dataclass(frozen=True)
class NxspeArrays:
    """The parts of an NXSPE entry the reduction uses: S (n_det, n_E), its errors, the energy bin
    edges (n_E + 1, meV), 2θ per detector (degrees), Ei (meV) and whether S already has ki/kf."""

    s: np.ndarray
    error: np.ndarray
    edges_mev: np.ndarray
    polar_deg: np.ndarray
    ei_mev: float
    ki_over_kf_applied: bool = True


def _nxspe_arrays(entry, src) -> NxspeArrays:
    """Read and check the shapes of an NXSPE entry's datasets."""
    if not isinstance(entry.get("data"), type(entry)) or not isinstance(entry.get("NXSPE_info"), type(entry)):
        raise DefectnetError(f"{entry.name}/data and {entry.name}/NXSPE_info must be groups", source=src)
    data, info = entry["data"], entry["NXSPE_info"]
    s, err = _dataset(data, "data", src, ndim=2), _dataset(data, "error", src, ndim=2)
    energy, polar = _dataset(data, "energy", src, ndim=1), _dataset(data, "polar", src, ndim=1)
    ei = _dataset(info, "fixed_energy", src).ravel()
    n_det, n_e = s.shape
    where = entry.name.strip("/")
    if err.shape != s.shape:
        raise DefectnetError(f"{where}/data/error has shape {err.shape}; expected {s.shape} like data/data", source=src)
    if polar.size != n_det:
        raise DefectnetError(f"{where}/data/polar has {polar.size} angles; expected one per detector ({n_det})",
                             source=src)
    if energy.size == n_e:  # bin centres: edges halfway between, end bins half bins
        energy = np.concatenate([energy[:1], 0.5 * (energy[1:] + energy[:-1]), energy[-1:]])
    if energy.size != n_e + 1:
        raise DefectnetError(f"{where}/data/energy has {energy.size} values for {n_e} energy bins; expected "
                             f"{n_e + 1} edges or {n_e} centres", source=src)
    if ei.size != 1 or not (np.isfinite(ei[0]) and ei[0] > 0):
        raise DefectnetError(f"{where}/NXSPE_info/fixed_energy must be one positive Ei in meV, got {ei}", source=src)
    if not (np.all(np.isfinite(energy)) and np.all(np.diff(energy) > 0) and np.all(np.isfinite(polar))):
        raise DefectnetError(f"{where}/data/energy must be finite and increasing and data/polar finite", source=src)
    scaled = _dataset(info, "ki_over_kf_scaling", src).ravel() if "ki_over_kf_scaling" in info else np.ones(1)
    return NxspeArrays(s, err, energy, polar, float(ei[0]), bool(scaled.size == 0 or scaled[0]))


def momentum_transfer(ei_mev, e_mev, two_theta_deg) -> np.ndarray:
    """|Q| (Å⁻¹) for incident energy Ei, energy transfer E (meV, < Ei) and scattering angle 2θ (degrees):
    Q² = ki² + kf² − 2 ki kf cos 2θ; arrays broadcast."""
    ki = np.sqrt(ei_mev / MEV_A2_PER_K2)
    kf = np.sqrt(np.maximum(ei_mev - np.asarray(e_mev), 0.0) / MEV_A2_PER_K2)
    return np.sqrt(np.maximum(ki**2 + kf**2 - 2 * ki * kf * np.cos(np.radians(two_theta_deg)), 0.0))


def one_phonon_factor(e_mev, q, temperature_k, u2_a2) -> np.ndarray:
    """E · exp(Q²⟨u²⟩) / (Q² [n(E) + 1]) for E > 0: what turns incoherent one-phonon S(Q, E) into g(E)."""
    e = np.asarray(e_mev, dtype=float)
    inv_bose = -np.expm1(-e / (KB_MEV_PER_K * temperature_k)) if temperature_k > 0 else np.ones_like(e)
    return e * inv_bose * np.exp(q**2 * u2_a2) / q**2


def reduce_nxspe(a: NxspeArrays, r: NxspeReduction, src: str = "NXSPE") -> Spectrum:
    """g(E) from an NXSPE S(Q, E): the mean over unmasked detectors with Q in [q_min, q_max] of
    S · one_phonon_factor, with errors √(Σ (σ · factor)²) / N (see the module docstring)."""
    centres = 0.5 * (a.edges_mev[1:] + a.edges_mev[:-1])
    cols = np.flatnonzero((centres > r.e_min_mev) & (centres > 0) & (a.edges_mev[1:] < a.ei_mev))
    if cols.size == 0:
        raise DefectnetError(f"no energy bin between e_min {r.e_min_mev:g} meV and Ei {a.ei_mev:g} meV", source=src)
    e = centres[cols]
    q = momentum_transfer(a.ei_mev, e[None, :], a.polar_deg[:, None])
    s, err = a.s[:, cols], a.error[:, cols]
    masked = ~np.isfinite(s) | (s <= MASK_BELOW) | ~np.isfinite(err)
    q_hi = np.inf if r.q_max is None else r.q_max
    use = ~masked & (q >= (r.q_min or 0.0)) & (q <= q_hi) & (q > 0)
    factor = np.where(use, one_phonon_factor(e[None, :], np.where(q > 0, q, 1.0), r.temperature_k, r.u2_a2), 0.0)
    if not a.ki_over_kf_applied:
        factor *= np.sqrt(a.ei_mev / (a.ei_mev - e))[None, :]
    n = use.sum(axis=0)
    if not n.any():
        qs = q[~masked]
        raise DefectnetError(f"no detector-bin has Q in [{r.q_min or 0:g}, {q_hi:g}] Å⁻¹ (the file covers "
                             f"{qs.min():.3g}–{qs.max():.3g} Å⁻¹)", source=src)
    lo, hi = np.flatnonzero(n)[[0, -1]]
    if np.any(n[lo:hi + 1] == 0):
        gap = e[lo + int(np.argmax(n[lo:hi + 1] == 0))]
        raise DefectnetError(f"no detector has Q in the stated range at E = {gap:g} meV; widen the Q range",
                             source=src)
    keep = slice(lo, hi + 1)
    g = np.sum(np.where(use, s, 0.0) * factor, axis=0)[keep] / n[keep]
    sigma = np.sqrt(np.sum((np.where(use, err, 0.0) * factor) ** 2, axis=0))[keep] / n[keep]
    edges = a.edges_mev[np.r_[cols[keep], cols[hi] + 1]]
    q_used = q[use]
    meta = {"source": src, "format": "nxspe", "unit": "meV", "ei_mev": a.ei_mev, "reduction": {
        **asdict(r), "approximation": "incoherent one-phonon", "multiphonon_correction": None,
        "debye_waller": "exp(-Q^2 <u^2>), <u^2> along Q", "q_used_inv_a": [float(q_used.min()), float(q_used.max())],
        "n_detectors": int(a.s.shape[0]), "masked_bins": int(masked.sum()),
        "ki_over_kf_applied_by_reader": not a.ki_over_kf_applied}}
    g, sigma = checked_negatives(g, sigma, meta, src)
    return Spectrum(edges, g, kind="gpdos", meta=meta, errors=sigma)
