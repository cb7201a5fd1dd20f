"""Spectrum: physical invariants of building, broadening, rebinning and weighting spectra."""

import hashlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from defectnet.elements import mass_amu, neutron_cross_section_barn
from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID, EnergyGrid
from defectnet.resolution import Polynomial, get_resolution
from defectnet.spectrum import Spectrum
from defectnet.units import from_mev, to_mev

FINE = EnergyGrid(kind="linear", e_min_mev=0.0, e_max_mev=60.0, n_bins=2000)  # 0.03 meV bins


def measured_fwhm(s: Spectrum) -> float:
    """FWHM of the single peak, from linear interpolation of the half-maximum crossings."""
    c, v = s.centers_mev, s.values
    i = int(np.argmax(v))
    half = v[i] / 2
    lo = np.flatnonzero(v[:i] < half)[-1]
    hi = i + np.flatnonzero(v[i:] < half)[0]
    left = np.interp(half, [v[lo], v[lo + 1]], [c[lo], c[lo + 1]])
    right = np.interp(half, [v[hi], v[hi - 1]], [c[hi], c[hi - 1]])
    return right - left


def delta(grid: EnergyGrid, e_mev: float) -> Spectrum:
    values = np.zeros(grid.n_bins)
    i = np.searchsorted(grid.edges, e_mev) - 1
    values[i] = 1.0 / grid.widths[i]
    return Spectrum.on_grid(grid, values)


def gaussian_spectrum(grid, centre, sigma):
    return Spectrum.on_grid(grid, np.exp(-0.5 * ((grid.centers - centre) / sigma) ** 2)).normalized()


# ------------------------------------------------------------------ grid


def test_grid_id_of_the_default_grid_stays_and_equal_grids_share_an_id():
    assert DEFAULT_GRID.grid_id == "asinh-0-500meV-640-d92f65f9"  # what committed datasets and models record
    for grid in (EnergyGrid(e_min_mev=0, e_max_mev=500, e0_mev=25), EnergyGrid.from_dict({"e_max_mev": 500})):
        assert grid.grid_id == DEFAULT_GRID.grid_id
    assert EnergyGrid(e_min_mev=0, e_max_mev=400).grid_id == EnergyGrid(e_min_mev=0.0, e_max_mev=400.0).grid_id
    assert EnergyGrid(e_max_mev=400).grid_id != DEFAULT_GRID.grid_id


def test_a_grid_knows_the_id_older_files_gave_it_when_saved_with_an_int():
    grid = EnergyGrid.from_dict({"e_max_mev": 400})
    assert grid.to_dict()["e_max_mev"] == 400 and isinstance(grid.to_dict()["e_max_mev"], int)
    digest = hashlib.sha1(json.dumps(grid.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
    old = f"asinh-0-400meV-640-{digest}"  # the id as hashed before ids were canonical
    assert old != grid.grid_id and grid.is_id(old) and grid.is_id(grid.grid_id)
    assert not grid.is_id(DEFAULT_GRID.grid_id)


# ------------------------------------------------------------------ construction


def test_validation():
    edges = np.arange(6.0)
    Spectrum(edges, np.ones(5))
    with pytest.raises(DefectnetError):
        Spectrum(edges, np.ones(4))
    with pytest.raises(DefectnetError):
        Spectrum(edges[::-1], np.ones(5))
    with pytest.raises(DefectnetError):
        Spectrum(edges, [1, 2, np.nan, 4, 5])
    with pytest.raises(DefectnetError):
        Spectrum(edges, np.ones(5), {"Si": np.ones(3)})
    with pytest.raises(DefectnetError):
        Spectrum(edges, np.ones(5), {"Si": [1, 1, np.inf, 1, 1]})
    with pytest.raises(DefectnetError):
        Spectrum(edges, np.ones(5), kind="")


def test_arrays_are_copied_and_read_only():
    v = np.ones(5)
    s = Spectrum(np.arange(6.0), v)
    v[0] = 7.0
    assert s.values[0] == 1.0
    with pytest.raises(ValueError):
        s.values[0] = 2.0


def test_on_grid_and_from_points():
    s = Spectrum.on_grid(DEFAULT_GRID, np.ones(DEFAULT_GRID.n_bins))
    assert s.area() == pytest.approx(500.0)
    assert_allclose(s.widths_mev, DEFAULT_GRID.widths)
    p = Spectrum.from_points([0.0, 1.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0])
    assert_allclose(p.edges_mev, [0.0, 0.5, 2.0, 3.5, 4.0])
    assert p.area() == pytest.approx(4.0)  # half bins at the ends


# ------------------------------------------------------------------ from_modes


def two_element_modes(n=1200, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.0, 60.0, n)
    ga = rng.uniform(0.0, 1.0, n)
    return f, {"Ga": ga, "As": 1.0 - ga}


@pytest.mark.parametrize("broadening", [{"fwhm_mev": 1.0}, {"resolution": "tosca"}])
def test_from_modes_area_and_partials(broadening):
    f, pw = two_element_modes()
    s = Spectrum.from_modes(f, DEFAULT_GRID, partial_weights=pw, **broadening)
    assert s.area() == pytest.approx(1.0, abs=1e-12)
    assert_allclose(s.partials["Ga"] + s.partials["As"], s.values, atol=1e-14)
    # Partial areas are the element mode fractions.
    for el, w in pw.items():
        assert np.sum(s.partials[el] * s.widths_mev) == pytest.approx(w.mean(), rel=1e-10)
    assert s.meta["n_imaginary"] == 0 and s.meta["n_modes"] == f.size


def test_from_modes_matches_brute_force():
    # Every mode against every edge, no windowing: Φ((edge − E)/σ) differences, renormalised
    # by the mass above e_min; the windowed implementation must agree to round-off.
    from scipy.stats import norm

    rng = np.random.default_rng(5)
    f = np.concatenate([rng.uniform(0.0, 480.0, 400), [0.0, 0.01, 499.0, 530.0]])
    res = get_resolution("tosca")
    sigma = res.fwhm_mev(f) / (2 * np.sqrt(2 * np.log(2)))
    cdf = norm.cdf((DEFAULT_GRID.edges[None, :] - f[:, None]) / sigma[:, None])
    mass = np.diff(cdf, axis=1) / (1 - cdf[:, :1])
    expected = mass.sum(axis=0) / DEFAULT_GRID.widths / mass.sum()
    s = Spectrum.from_modes(f, DEFAULT_GRID, resolution=res)
    assert_allclose(s.values, expected, rtol=1e-10, atol=1e-14)
    assert s.meta["lost_area"] == pytest.approx(1 - mass.sum() / f.size, rel=1e-9)


def test_from_modes_weights():
    s = Spectrum.from_modes([10.0, 40.0], DEFAULT_GRID, weights=[3.0, 1.0], fwhm_mev=1.0)
    below = s.centers_mev < 25
    assert np.sum((s.values * s.widths_mev)[below]) == pytest.approx(0.75, rel=1e-9)


def test_imaginary_modes_counted_not_folded():
    s = Spectrum.from_modes([-5.0, -3.0, 30.0], DEFAULT_GRID, fwhm_mev=1.0)
    ref = Spectrum.from_modes([30.0], DEFAULT_GRID, fwhm_mev=1.0)
    assert s.meta["n_imaginary"] == 2
    assert s.meta["min_imaginary_mev"] == -5.0
    assert_allclose(s.values, ref.values, atol=1e-15)  # nothing put at |E| or at 0
    # A tiny negative (acoustic mode at Γ) is kept, not counted.
    t = Spectrum.from_modes([-0.01, 30.0], DEFAULT_GRID, fwhm_mev=1.0)
    assert t.meta["n_imaginary"] == 0
    assert np.sum((t.values * t.widths_mev)[t.centers_mev < 10]) == pytest.approx(0.5, rel=1e-9)


def test_spill_below_grid_is_renormalised():
    # A line at 0 has half its Gaussian below e_min; it must keep its full weight.
    s = Spectrum.from_modes([0.0, 50.0], DEFAULT_GRID, fwhm_mev=2.0)
    low = np.sum((s.values * s.widths_mev)[s.centers_mev < 25])
    assert low == pytest.approx(0.5, rel=1e-9)
    assert "lost_area" not in s.meta


def test_modes_above_grid_are_lost_and_reported():
    s = Spectrum.from_modes([100.0, 700.0], DEFAULT_GRID, fwhm_mev=2.0)
    assert s.meta["lost_area"] == pytest.approx(0.5, rel=1e-9)
    assert s.area() == pytest.approx(1.0)
    assert s.peak_mev() == pytest.approx(100.0, abs=1.0)


@pytest.mark.parametrize("e", [3.0, 20.0, 75.0, 150.0, 420.0])
def test_single_mode_peak_at_its_energy(e):
    s = Spectrum.from_modes([e], DEFAULT_GRID, resolution="tosca")
    i = np.searchsorted(DEFAULT_GRID.edges, e) - 1
    assert abs(s.peak_mev() - e) <= DEFAULT_GRID.widths[i]
    assert s.area() == pytest.approx(1.0, abs=1e-12)


def test_narrow_line_on_wide_bins_keeps_area():
    # 0.05 meV line on ~2.8 meV bins near 450 meV: point sampling would alias it away.
    s = Spectrum.from_modes([449.3], DEFAULT_GRID, fwhm_mev=0.05)
    assert s.area() == pytest.approx(1.0, abs=1e-12)
    assert np.count_nonzero(s.values > 1e-12) <= 2


def test_from_modes_errors():
    with pytest.raises(DefectnetError):
        Spectrum.from_modes([10.0], DEFAULT_GRID)  # no width
    with pytest.raises(DefectnetError):
        Spectrum.from_modes([10.0], DEFAULT_GRID, fwhm_mev=1.0, resolution="tosca")
    with pytest.raises(DefectnetError):
        Spectrum.from_modes([10.0, 20.0], DEFAULT_GRID, fwhm_mev=1.0, partial_weights={"Si": [0.5, 1.0]})
    with pytest.raises(DefectnetError):
        Spectrum.from_modes([-10.0], DEFAULT_GRID, fwhm_mev=1.0)  # nothing left
    with pytest.raises(DefectnetError):
        Spectrum.from_modes([10.0, np.nan], DEFAULT_GRID, fwhm_mev=1.0)


# ------------------------------------------------------------------ broadening


@pytest.mark.parametrize("broadening", [{"fwhm_mev": 3.0}, {"resolution": "tosca"}, {"resolution": "direct:600"}])
def test_broadening_conserves_area(broadening):
    f, pw = two_element_modes()
    s = Spectrum.from_modes(f, DEFAULT_GRID, partial_weights=pw, fwhm_mev=0.3)
    b = s.broaden(**broadening)
    assert s.area() == pytest.approx(1.0, abs=1e-12)
    assert b.area() == pytest.approx(1.0, abs=1e-12)
    assert_allclose(b.partials["Ga"] + b.partials["As"], b.values, atol=1e-14)
    assert np.all(b.values >= 0)
    assert b.values.max() < s.values.max()
    assert len(b.meta["broadening"]) == 2


def test_broadening_conserves_area_near_edges():
    rng = np.random.default_rng(3)
    s = Spectrum.on_grid(DEFAULT_GRID, rng.uniform(0, 1, DEFAULT_GRID.n_bins))
    assert s.broaden(20.0).area() == pytest.approx(s.area(), rel=1e-12)


def test_broaden_matches_full_kernel():
    # K[i, j] = ∫_bin_i G(E − c_j; σ(c_j)) dE for all i, j, columns normalised to 1.
    from scipy.stats import norm

    rng = np.random.default_rng(11)
    s = Spectrum.on_grid(DEFAULT_GRID, rng.uniform(0, 1, DEFAULT_GRID.n_bins), {"Si": rng.uniform(0, 1, 640)})
    c, e = s.centers_mev, DEFAULT_GRID.edges
    sigma = get_resolution("tosca").fwhm_mev(c) / (2 * np.sqrt(2 * np.log(2)))
    k = np.diff(norm.cdf((e[:, None] - c[None, :]) / sigma[None, :]), axis=0)
    k /= k.sum(axis=0, keepdims=True)
    b = s.broaden(resolution="tosca")
    assert_allclose(b.values, k @ (s.values * s.widths_mev) / s.widths_mev, rtol=1e-10, atol=1e-14)
    assert_allclose(b.partials["Si"], k @ (s.partials["Si"] * s.widths_mev) / s.widths_mev, rtol=1e-10, atol=1e-14)


def test_broadened_delta_has_the_requested_fwhm():
    b = delta(FINE, 30.0).broaden(2.0)
    assert measured_fwhm(b) == pytest.approx(2.0, rel=0.01)
    assert b.peak_mev() == pytest.approx(30.0, abs=0.03)


def test_energy_dependent_fwhm():
    res = Polynomial((1.0, 0.02))  # 1.2 meV at 10, 1.8 meV at 40
    for e in (10.0, 40.0):
        b = delta(FINE, e).broaden(resolution=res)
        assert measured_fwhm(b) == pytest.approx(1.0 + 0.02 * e, rel=0.01)
    # On the default grid, TOSCA at 100 meV (FWHM 1.93 meV on 0.63 meV bins): bin averaging
    # adds the variance of a uniform over one bin, w²/12, to σ².
    s = Spectrum.from_modes([100.0], DEFAULT_GRID, resolution="tosca")
    fwhm = float(get_resolution("tosca").fwhm_mev(100.0))
    w = DEFAULT_GRID.widths[np.searchsorted(DEFAULT_GRID.edges, 100.0) - 1]
    expected = np.sqrt(fwhm**2 + 8 * np.log(2) * w**2 / 12)
    assert measured_fwhm(s) == pytest.approx(expected, rel=0.015)


# ------------------------------------------------------------------ resampling


@st.composite
def binned(draw):
    n = draw(st.integers(2, 40))
    widths = np.array(draw(st.lists(st.floats(0.01, 10.0), min_size=n, max_size=n)))
    start = draw(st.floats(0.0, 50.0))
    values = np.array(draw(st.lists(st.floats(0.0, 1e3), min_size=n, max_size=n)))
    return Spectrum(start + np.concatenate([[0.0], np.cumsum(widths)]), values)


@settings(max_examples=60, deadline=None)
@given(binned(), st.integers(2, 80), st.floats(0.0, 5.0), st.floats(0.0, 5.0))
def test_resample_conserves_area(s, n_new, pad_lo, pad_hi):
    new = np.linspace(s.edges_mev[0] - pad_lo, s.edges_mev[-1] + pad_hi, n_new + 1)
    r = s.resample(new)
    assert r.area() == pytest.approx(s.area(), rel=1e-9, abs=1e-9)
    assert r.meta["lost_area"] == pytest.approx(0.0, abs=1e-9 * max(1.0, s.area()))


@settings(max_examples=40, deadline=None)
@given(binned(), st.floats(0.05, 0.95), st.floats(0.05, 0.95))
def test_resample_reports_lost_area(s, a, b):
    lo_e, hi_e = s.edges_mev[0], s.edges_mev[-1]
    lo, hi = sorted((lo_e + a * (hi_e - lo_e), lo_e + b * (hi_e - lo_e)))
    if hi - lo < 1e-6:
        return
    r = s.resample(np.linspace(lo, hi, 7))
    # Exact area of the piecewise-constant density inside [lo, hi].
    cum = np.concatenate([[0.0], np.cumsum(s.values * s.widths_mev)])
    inside = np.interp(hi, s.edges_mev, cum) - np.interp(lo, s.edges_mev, cum)
    assert r.area() == pytest.approx(inside, rel=1e-9, abs=1e-9)
    assert r.meta["lost_area"] == pytest.approx(s.area() - inside, rel=1e-9, abs=1e-9)


def test_resample_identity_and_grid():
    f, pw = two_element_modes()
    s = Spectrum.from_modes(f, DEFAULT_GRID, partial_weights=pw, fwhm_mev=1.0)
    assert_allclose(s.resample(DEFAULT_GRID).values, s.values, rtol=1e-9, atol=1e-15)
    coarse = s.resample(EnergyGrid(n_bins=100))
    assert coarse.is_on(EnergyGrid(n_bins=100)) and not coarse.is_on(DEFAULT_GRID)
    assert coarse.area() == pytest.approx(1.0, abs=1e-12)
    assert_allclose(coarse.partials["Ga"] + coarse.partials["As"], coarse.values, atol=1e-13)


# ------------------------------------------------------------------ units


def test_unit_constants():
    assert to_mev(1.0, "THz") == pytest.approx(4.135667696, rel=1e-12)
    assert from_mev(1.0, "cm-1") == pytest.approx(8.0655, rel=1e-5)
    assert to_mev(1.0, "cm-1") == pytest.approx(1 / 8.0655439, rel=1e-7)


def test_known_line_in_units():
    e = 10.0 * 4.135667696  # a 10 THz line
    s = Spectrum.from_modes([e], FINE, fwhm_mev=0.2)
    for unit, expected, tol in (("meV", e, 0.02), ("THz", 10.0, 0.02 / 4.1357), ("cm-1", e * 8.0655439, 0.02 * 8.07)):
        x, y = s.in_units(unit)
        assert x[np.argmax(y)] == pytest.approx(expected, abs=tol)
        widths_u = np.diff(from_mev(s.edges_mev, unit))
        assert np.sum(y * widths_u) == pytest.approx(1.0, rel=1e-12)  # area is unit-invariant


# ------------------------------------------------------------------ neutron weighting


def test_gpdos_of_one_element_host_is_the_pdos():
    rng = np.random.default_rng(1)
    f = rng.uniform(0, 65, 300)
    s = Spectrum.from_modes(f, DEFAULT_GRID, partial_weights={"Si": np.ones(300)}, fwhm_mev=1.0)
    g = s.neutron_weighted({"Si": 1.0})
    assert g.kind == "gpdos"
    assert_allclose(g.values, s.values, rtol=1e-12, atol=1e-15)


def test_gpdos_two_elements_by_hand():
    # Ga modes all at 10 meV, As modes at 30 meV, 1:1 composition. Sears (1992) total
    # bound cross sections: Ga 6.83 b, As 5.50 b; masses 69.723 and 74.9216 amu.
    s = Spectrum.from_modes([10.0, 10.0, 30.0, 30.0], DEFAULT_GRID, fwhm_mev=1.0,
                            partial_weights={"Ga": [1, 1, 0, 0], "As": [0, 0, 1, 1]})
    assert neutron_cross_section_barn("Ga") == pytest.approx(6.83, rel=0.01)
    assert neutron_cross_section_barn("As") == pytest.approx(5.50, rel=0.01)
    w_ga, w_as = 0.5 * 6.83 / 69.723, 0.5 * 5.50 / 74.9216
    g = s.neutron_weighted({"Ga": 0.5, "As": 0.5})
    low = np.sum((g.values * g.widths_mev)[g.centers_mev < 20])
    assert low == pytest.approx(w_ga / (w_ga + w_as), rel=0.01)
    assert g.area() == pytest.approx(1.0, abs=1e-12)
    assert_allclose(g.partials["Ga"] + g.partials["As"], g.values, atol=1e-14)
    # Exact, with the package's own table: the Ga peak shape is scaled by its weight.
    wg = 0.5 * neutron_cross_section_barn("Ga") / mass_amu("Ga")
    wa = 0.5 * neutron_cross_section_barn("As") / mass_amu("As")
    assert_allclose(g.partials["Ga"], s.partials["Ga"] / 0.5 * wg / (wg + wa), rtol=1e-12)


def test_gpdos_needs_partials_and_matching_elements():
    s = Spectrum.from_modes([10.0], DEFAULT_GRID, fwhm_mev=1.0)
    with pytest.raises(DefectnetError):
        s.neutron_weighted({"Si": 1.0})
    t = Spectrum.from_modes([10.0], DEFAULT_GRID, fwhm_mev=1.0, partial_weights={"Si": [1.0]})
    with pytest.raises(DefectnetError):
        t.neutron_weighted({"Si": 0.9, "Ge": 0.1})
    with pytest.raises(DefectnetError):
        t.neutron_weighted({"Si": -1.0})


# ------------------------------------------------------------------ misc


def test_normalized_scales_partials():
    s = Spectrum(np.arange(6.0), [1, 2, 3, 4, 0], {"Si": [1, 2, 3, 4, 0]})
    n = s.normalized()
    assert n.area() == pytest.approx(1.0)
    assert_allclose(n.partials["Si"], n.values)
    with pytest.raises(DefectnetError):
        Spectrum(np.arange(6.0), np.zeros(5)).normalized()


def test_peak_window():
    s = Spectrum.from_modes([10.0, 10.0, 40.0], DEFAULT_GRID, fwhm_mev=1.0)
    assert s.peak_mev() == pytest.approx(10.0, abs=0.2)
    assert s.peak_mev(e_min=20.0) == pytest.approx(40.0, abs=0.4)
    with pytest.raises(DefectnetError):
        s.peak_mev(600.0, 700.0)


@pytest.mark.parametrize("shift", [0.37, 2.0, 5.5])
def test_w1_of_shifted_spectrum_is_the_shift(shift):
    a = gaussian_spectrum(FINE, 25.0, 3.0)
    b = gaussian_spectrum(FINE, 25.0 + shift, 3.0)
    assert a.wasserstein1_mev(b) == pytest.approx(shift, rel=1e-3)
    assert b.wasserstein1_mev(a) == pytest.approx(a.wasserstein1_mev(b), rel=1e-12)
    assert a.wasserstein1_mev(a) == 0.0


def test_w1_crossing_cdfs_exact():
    # Unit mass moved from bin [0,1] to bin [1,2] (uniform within bins): W1 = 1.
    a = Spectrum([0.0, 1.0, 2.0], [1.0, 0.0])
    b = Spectrum([0.0, 1.0, 2.0], [0.0, 1.0])
    assert a.wasserstein1_mev(b) == pytest.approx(1.0)
    # Halves on [0,1] and [2,3] against all on [1,2]: |CDF_c − CDF_d| is a triangle of
    # area 0.25 in each bin, the middle one crossing zero (a signed sum would give 0 there).
    c = Spectrum([0.0, 1.0, 2.0, 3.0], [0.5, 0.0, 0.5])
    d = Spectrum([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 0.0])
    assert c.wasserstein1_mev(d) == pytest.approx(0.75)
    with pytest.raises(DefectnetError):
        a.wasserstein1_mev(c)


def test_dict_round_trip_exact():
    f, pw = two_element_modes(200)
    s = Spectrum.from_modes(f, DEFAULT_GRID, partial_weights=pw, resolution="tosca", kind="total")
    d = json.loads(json.dumps(s.to_dict()))
    t = Spectrum.from_dict(d)
    assert np.array_equal(t.values, s.values) and np.array_equal(t.edges_mev, s.edges_mev)
    assert all(np.array_equal(t.partials[el], s.partials[el]) for el in s.partials)
    assert t.kind == s.kind and t.meta == s.meta
    with pytest.raises(DefectnetError):
        Spectrum.from_dict({"values": [1.0]})


def test_signature_fidelity_is_the_share_of_the_defect_signature_reproduced():
    pristine = gaussian_spectrum(FINE, 25.0, 3.0)
    doped = Spectrum(pristine.edges_mev, 0.8 * pristine.values + 0.2 * gaussian_spectrum(FINE, 40.0, 2.0).values)
    halfway = Spectrum(pristine.edges_mev, 0.5 * (pristine.values + doped.values))
    assert doped.signature_fidelity(doped, pristine) == 1.0
    assert pristine.signature_fidelity(doped, pristine) == pytest.approx(0.0, abs=1e-12)
    assert halfway.signature_fidelity(doped, pristine) == pytest.approx(0.5)
    with pytest.raises(DefectnetError, match="same edges"):
        doped.signature_fidelity(doped, Spectrum(np.arange(6.0), np.ones(5)))


# ------------------------------------------------------------------ per-bin errors


def brute_force_rebinned_errors(old_edges, errors, new_edges):
    """σ_j = √(Σ_i (σ_i · overlap_ij)²) / width_j from an explicit overlap matrix."""
    out = np.zeros(new_edges.size - 1)
    for j in range(out.size):
        lo, hi = new_edges[j], new_edges[j + 1]
        overlap = np.clip(np.minimum(old_edges[1:], hi) - np.maximum(old_edges[:-1], lo), 0.0, None)
        out[j] = np.sqrt(np.sum((errors * overlap) ** 2)) / (hi - lo)
    return out


def test_errors_validated_and_kept():
    with pytest.raises(DefectnetError, match="errors"):
        Spectrum([0.0, 1.0, 2.0], [1.0, 1.0], errors=[0.1, -0.1])
    with pytest.raises(DefectnetError, match="errors"):
        Spectrum([0.0, 1.0, 2.0], [1.0, 1.0], errors=[0.1])
    s = Spectrum([0.0, 1.0, 2.0], [1.0, 1.0], errors=[0.1, 0.2])
    assert not s.errors.flags.writeable and Spectrum([0.0, 1.0], [1.0]).errors is None


def test_resample_adds_errors_in_quadrature_by_overlap():
    # Two equal old bins into one new bin: σ = √(σ1² + σ2²) / 2 (the mean of two independent bins).
    s = Spectrum([0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], errors=[0.3, 0.4, 0.5, 1.2])
    r = s.resample([0.0, 2.0, 4.0])
    assert_allclose(r.values, [1.5, 3.5])
    assert_allclose(r.errors, [0.25, 0.65], rtol=1e-12)
    # A bin split in two keeps its relative error in each half.
    assert_allclose(s.resample([0.0, 0.5, 1.0]).errors, [0.3, 0.3], rtol=1e-12)


def test_resample_errors_match_brute_force_on_unaligned_bins():
    rng = np.random.default_rng(3)
    old = np.concatenate([[1.0], 1.0 + np.cumsum(rng.uniform(0.05, 0.6, 150))])
    s = Spectrum(old, rng.uniform(0, 2, 150), errors=rng.uniform(0.01, 0.3, 150))
    new = np.concatenate([[old[0] - 2.0], np.linspace(old[0] - 1.0, old[-1] + 1.0, 35), [old[-1] + 2.0]])
    r = s.resample(new)
    assert_allclose(r.errors, brute_force_rebinned_errors(old, s.errors, new), rtol=1e-10, atol=1e-15)
    assert r.errors[0] == 0.0 and r.errors[-1] == 0.0  # bins outside the data


def test_resample_errors_against_monte_carlo():
    rng = np.random.default_rng(11)
    old = np.concatenate([[0.0], np.cumsum(rng.uniform(0.2, 1.0, 40))])
    sigma = rng.uniform(0.05, 0.2, 40)
    new = np.linspace(0.3, old[-1] - 0.3, 9)
    draws = np.array([Spectrum(old, 1.0 + sigma * rng.standard_normal(40)).resample(new).values
                      for _ in range(4000)])
    predicted = Spectrum(old, np.ones(40), errors=sigma).resample(new).errors
    assert_allclose(draws.std(axis=0), predicted, rtol=0.05)


def test_normalise_scale_and_dict_carry_errors():
    s = Spectrum([0.0, 1.0, 3.0], [2.0, 1.0], errors=[0.2, 0.1], meta={"a": 1})
    n = s.normalized()  # area 4
    assert_allclose(n.errors, [0.05, 0.025])
    assert_allclose(s.scale_energy(2.0).errors, [0.1, 0.05])
    t = Spectrum.from_dict(json.loads(json.dumps(s.to_dict())))
    assert np.array_equal(t.errors, s.errors)
    assert "errors" not in Spectrum([0.0, 1.0], [1.0]).to_dict()


def test_broaden_drops_errors_and_says_so():
    s = Spectrum(np.linspace(0, 10, 11), np.ones(10), errors=np.full(10, 0.1))
    b = s.broaden(1.0)
    assert b.errors is None and b.meta["errors_dropped"] == ["broaden"]
    assert "errors_dropped" not in Spectrum(np.linspace(0, 10, 11), np.ones(10)).broaden(1.0).meta


def test_area_quantile_is_where_the_share_of_the_area_is_reached_one_or_many():
    from defectnet.spectrum import area_quantile_mev

    edges = np.linspace(0.0, 10.0, 11)  # 1 meV bins
    flat = np.ones(10) / 10
    assert area_quantile_mev(flat, edges, 0.5) == 5.0
    assert area_quantile_mev(flat, edges, 0.95) == 10.0
    tailed = np.concatenate([np.ones(5) / 5, np.zeros(5)])  # trailing zero rows do not move it
    np.testing.assert_array_equal(area_quantile_mev(np.stack([flat, tailed]), edges, 0.995), [10.0, 5.0])
