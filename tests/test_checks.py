"""defectnet.checks: the signal-against-noise estimator and the plausibility of an answer, on spectra made here."""

from __future__ import annotations

import numpy as np
import pytest

from defectnet.checks import (DOPED_EDGE_WINDOW, MAX_DOPANTS, MAX_TOTAL_FRACTION, PRISTINE_EDGE_WINDOW, band_edge,
                              choose_unit, coverage_warnings, doped_consistency, doped_problem, host_consistency, is_cut,
                              plausibility_warnings, roughness, scale_warning, scaled_w1, signal_against_noise,
                              swap_consistency, change_unexplained_warning, low_energy_text, sharpening_text,
                              swap_problem, w1_noise)
from defectnet.errors import DefectnetError
from defectnet.spectrum import onto_grid
from defectnet.spectrum import Spectrum

E = np.arange(0.125, 100.0, 0.25)  # uniform points, meV


def _band():
    """A host-like PDoS: acoustic Debye part and an optical peak, zero above 60 meV."""
    return np.where(E < 40, (E / 40) ** 2, 0.0) + np.exp(-0.5 * ((E - 52) / 3) ** 2)


def _spec(v):
    return Spectrum.from_points(E, v)


def _local_mode(share):
    """A broadened local mode at 75 meV (FWHM 2 meV, several points wide) holding ``share`` of the band's area."""
    mode = np.exp(-0.5 * ((E - 75) / 0.85) ** 2)
    return share * mode / mode.sum() * _band().sum()


@pytest.mark.parametrize("seed", range(5))
def test_white_noise_alone_is_no_signature_and_a_local_mode_above_it_is(seed):
    rng = np.random.default_rng(seed)
    band, sigma = _band(), 0.01  # 1 % of the optical peak, on a background that keeps the values positive
    pristine = _spec(band + 0.05 + sigma * rng.standard_normal(E.size))
    noise_only = signal_against_noise(pristine, _spec(band + 0.05 + sigma * rng.standard_normal(E.size)))
    assert noise_only["above_noise"] is False and noise_only["ratio"] < noise_only["threshold"]
    doped = _spec(band + 0.05 + _local_mode(0.02) + sigma * rng.standard_normal(E.size))
    signal = signal_against_noise(pristine, doped)
    assert signal["above_noise"] is True and signal["ratio"] > signal["threshold"]


def test_the_noise_estimate_is_the_norm_of_the_noise_added():
    """Two independent noises of σ (density per meV, before normalisation): ‖Δ‖ ≈ √2 σ √n, and so is the estimate."""
    rng = np.random.default_rng(11)
    band = _band() + 0.05
    p, d = band + 0.01 * rng.standard_normal(E.size), band + 0.01 * rng.standard_normal(E.size)
    out = signal_against_noise(_spec(p), _spec(d))
    area = np.sum(band) * 0.25  # both are normalised to unit area
    expected = np.sqrt(2 * (E.size - 2)) * 0.01 / area
    assert out["noise"] == pytest.approx(expected, rel=0.1) and out["norm"] == pytest.approx(expected, rel=0.1)


def test_counting_noise_that_follows_the_intensity_is_no_signature():
    rng = np.random.default_rng(5)
    band = _band()
    out = signal_against_noise(_spec(band), _spec(band * (1 + 0.05 * rng.standard_normal(E.size)).clip(0)))
    assert out["above_noise"] is False
    assert out["bins"] < 0.5 * np.count_nonzero(band)  # the noise sits in the strong bins: fewer effective ones


def test_a_noiseless_signature_is_one_and_the_same_spectrum_twice_is_none():
    band = _band()
    assert signal_against_noise(_spec(band), _spec(band + _local_mode(0.002)))["above_noise"] is True
    same = signal_against_noise(_spec(band), _spec(band.copy()))
    assert same["above_noise"] is False and same["norm"] == 0 and same["threshold"] is None


def test_the_coarser_file_sets_the_bins_so_a_finer_noisy_one_is_averaged():
    rng = np.random.default_rng(2)
    fine = np.arange(0.0625, 100.0, 0.125)
    band_fine = np.interp(fine, E, _band()) + 0.05
    noisy_fine = Spectrum.from_points(fine, band_fine + 0.01 * rng.standard_normal(fine.size))
    coarse = _spec(_band() + 0.05 + 0.01 * rng.standard_normal(E.size))
    out = signal_against_noise(coarse, noisy_fine)
    assert out["above_noise"] is False


def test_too_few_points_cannot_tell():
    e = np.linspace(0, 100, 6)
    out = signal_against_noise(Spectrum.from_points(e, np.ones(6)), Spectrum.from_points(e, np.arange(1.0, 7.0)))
    assert out["above_noise"] is None


def _rows(*concentrations, detected=True):
    return [{"element": f"X{k}", "concentration": c, "detected": detected} for k, c in enumerate(concentrations)]


def test_plausibility_bounds_are_what_the_model_card_states():
    assert (MAX_TOTAL_FRACTION, MAX_DOPANTS) == (0.25, 6)  # "Concentrations outside 0.2–25 at.% and more than 6 dopants"


def test_a_total_above_the_trained_range_is_warned_with_its_number():
    assert plausibility_warnings(_rows(0.15, 0.10)) == []  # 25 at.%: the edge of the range, not beyond it
    (warning,) = plausibility_warnings(_rows(0.15, 0.10, 0.002))
    assert "add up to 25.2 at.%, above the 25 at.%" in warning
    (warning,) = plausibility_warnings(_rows(0.2, 0.2, detected=False))  # reported, even if not called present
    assert "40.0 at.%" in warning


def test_more_dopants_detected_than_trained_for_is_warned_with_the_count():
    assert plausibility_warnings(_rows(*[0.01] * 6)) == []
    (warning,) = plausibility_warnings(_rows(*[0.01] * 7))
    assert warning.startswith("7 dopants detected (X0, X1, X2, X3, X4, X5, X6), more than the 6")
    assert plausibility_warnings(_rows(*[0.01] * 9, detected=False)) == []  # reported but not detected
    assert len(plausibility_warnings(_rows(*[0.04] * 7))) == 2


# ----------------------------------------------------------------------------- consistency with the host
def test_band_edge_ignores_trailing_zero_rows_and_a_cut_spectrum_is_told():
    band = _spec(_band())
    assert 55 < band_edge(band) < 62  # the optical peak at 52 ± 3 meV; zeros run on to 100 meV
    assert not is_cut(band)
    assert is_cut(Spectrum.from_points(E[E < 30], _band()[E < 30]))


def test_a_stretched_or_different_host_is_far_and_a_softened_copy_is_near():
    band = _spec(_band())
    softened = band.scale_energy(1 / 0.85).broaden(2.0)  # a stiffer measurement at a coarser resolution
    near = host_consistency(softened, band)
    assert near["consistent"] and near["scale"] == pytest.approx(0.85, abs=0.01)
    other = _spec(np.where(E < 20, (E / 20) ** 2, 0.0) + 2 * np.exp(-0.5 * ((E - 45) / 2) ** 2))  # a gap, another shape
    far = host_consistency(other, band)
    assert not far["consistent"] and far["distance"] > 0.05


def test_a_doped_spectrum_keeps_its_bands_and_random_numbers_are_no_spectrum():
    band = _band()
    dilute = doped_consistency(_spec(band), _spec(band + _local_mode(0.3)))  # much area moved above the bands
    assert dilute["consistent"] and dilute["in_band"] < 0.05
    soft = doped_consistency(_spec(band), _spec(np.interp(E / 0.6, E, band)))  # another, softer host
    assert soft["consistent"] is False and soft["in_band"] > 0.25
    noise = _spec(np.random.default_rng(0).uniform(size=E.size))
    assert roughness(noise) > 0.2 and roughness(_spec(band)) < 0.01
    assert doped_consistency(_spec(band), noise)["consistent"] is False


def test_the_scaled_distance_is_the_w1_of_the_rescaled_and_resampled_spectrum():
    """scaled_w1 (all scales at once) against the definition: measured × s, resampled onto the reference's bins."""
    band = _spec(_band())
    measured = Spectrum.from_points(np.arange(0.2, 90.0, 0.4), np.interp(np.arange(0.2, 90.0, 0.4), E, _band() + 0.01))
    for s in (0.8, 1.0, 1.17):
        moved = measured.scale_energy(s).resample(band.edges_mev)
        assert scaled_w1(measured, band, [s])[0] == pytest.approx(moved.wasserstein1_mev(band), rel=1e-9)
    cut = Spectrum.from_points(E[E < 45], _band()[E < 45])
    mine = band.edges_mev[band.edges_mev <= cut.edges_mev[-1] * 1.1]
    expected = cut.scale_energy(1.1).resample(mine).wasserstein1_mev(band.resample(mine))
    assert scaled_w1(cut, band, [1.1], cut=True)[0] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("factor", [1.2, 1.4, 1.6, 1 / 1.3])
def test_a_doped_spectrum_on_a_stretched_axis_is_refused_and_a_doping_is_not(factor):
    """A dopant adds local modes and moves the bands a little; it does not stretch the energy axis."""
    band = _band()
    doped = band + _local_mode(0.05)
    assert doped_consistency(_spec(band), _spec(doped))["stretched"] is False
    check = doped_consistency(_spec(band), _spec(doped).scale_energy(factor))
    assert check["stretched"] and check["consistent"] is False
    assert check["stretch"] == pytest.approx(factor, rel=0.02)
    assert f"with its energies × {check['stretch']:.2f}" in doped_problem(check, "d.csv", "p.csv")
    softened = np.interp(E / 0.97, E, band) + _local_mode(0.05)  # a heavy alloy's 3 % softening is a doping
    assert doped_consistency(_spec(band), _spec(softened))["consistent"]


@pytest.mark.parametrize("shift", [5.0, 8.0, -6.0])  # 0.09-0.14 of the band edge (~58 meV)
def test_a_doped_spectrum_with_its_energy_zero_shifted_is_refused(shift):
    band = _band() + _local_mode(0.05)
    check = doped_consistency(_spec(_band()), Spectrum.from_points(E + shift, band))
    assert check["shifted"] and check["consistent"] is False
    assert check["shift_mev"] == pytest.approx(shift, abs=0.3)
    assert f"with its energies shifted by {check['shift_mev']:+.2f} meV" in doped_problem(check, "d.csv", "p.csv")
    assert doped_consistency(_spec(_band()), _spec(band))["shifted"] is False


def test_an_answer_too_small_for_the_change_in_the_bands_is_warned():
    """A doping of total x moves the spectrum below the band edge by at most 3x (W1 / band edge): an answer of
    0.5 at.% cannot explain a doped spectrum that is another host's."""
    band = _band()
    other = doped_consistency(_spec(band), _spec(np.interp(E / 0.8, E, band)))  # in band ~0.2 of the edge
    assert other["in_band"] > 0.1
    (warning,) = [w for w in [change_unexplained_warning(other, _rows(0.005))] if w]
    assert warning.startswith(f"the doped spectrum differs from its pristine below the band edge by {other['in_band']:.3f}")
    assert "but the answer adds up to 0.50 at.%" in warning
    assert change_unexplained_warning(other, _rows(0.1)) is None  # 10 at.% can
    dilute = doped_consistency(_spec(band), _spec(band + _local_mode(0.02)))
    assert change_unexplained_warning(dilute, _rows(0.005)) is None


def _broadened(v, fwhm_mev):
    """``v`` (on E) convolved with a Gaussian of ``fwhm_mev``: what the disorder of a doping does to a host's bands."""
    k = np.exp(-0.5 * (np.arange(-40, 41) * 0.25 / (fwhm_mev / 2.355)) ** 2)
    return np.convolve(v, k / k.sum(), mode="same")


def test_bands_sharper_than_the_pristines_are_more_than_the_answer_can_explain():
    """A doping broadens a host's bands: squared intensities (sharper peaks) are warned about unless the answer's
    total is large enough for its own modes to be that peaked; a broadened or noisy doped spectrum is not."""
    band = _band()
    squared = doped_consistency(_spec(band), _spec(band ** 2))
    assert squared["sharpening"] > 1.3
    warning = change_unexplained_warning(squared, _rows(0.02))
    assert warning and f"bands are {squared['sharpening']:.2f}× as peaked as its pristine's" in warning
    assert "2.00 at.% in all (the answer's) sharpens them at most to 1.15×" in warning
    assert sharpening_text(squared, 1.0) is None  # an answer of 100 at.% could (the plausibility check says the rest)
    disordered = doped_consistency(_spec(band), _spec(_broadened(band, 3.0) + _local_mode(0.05)))
    assert disordered["sharpening"] < 1 and sharpening_text(disordered, 0.0) is None
    noisy = doped_consistency(_spec(band), _spec(band * (1 + 0.2 * np.random.default_rng(1).standard_normal(E.size))))
    assert sharpening_text(noisy, 0.0) is None  # counting noise is not a sharper band (its part of ∫g² is taken off)


def test_weight_at_the_lowest_energies_beyond_a_dopings_is_warned():
    """A crystal's spectrum starts as E²: a flat box from 0 puts its first 5 % of area far lower than any doping of the
    answer's total can; a doping that softens the bands by 10 % does not."""
    band = _band()
    flat = doped_consistency(_spec(band), _spec(np.where(E < 90, 1.0, 0.0)))
    assert flat["low_quantile_ratio"] < 0.3
    warning = change_unexplained_warning(flat, _rows(0.1))
    assert warning and f"first 5 % of in-band area by {flat['low_quantile_ratio']:.2f}× the energy" in warning
    assert "10.00 at.% in all (the answer's) lowers to at most 0.45×" in warning
    softer = doped_consistency(_spec(band), _spec(np.interp(E / 0.9, E, band) + _local_mode(0.05)))
    assert 0.85 < softer["low_quantile_ratio"] < 0.95 and low_energy_text(softer, 0.0) is None
    assert low_energy_text(doped_consistency(_spec(band), _spec(band + _local_mode(0.05))), 0.0) is None


def test_a_file_coarser_than_the_grid_is_interpolated_not_stepped():
    """Points 0.5 meV apart read onto bins of 0.125 meV: the density between them is interpolated (a density of states
    is continuous), not a staircase of flat steps; a file as fine as the grid is averaged into it as before."""
    grid = np.arange(0.0, 80.0 + 1e-9, 0.125)
    centres = 0.5 * (grid[1:] + grid[:-1])
    true = np.exp(-0.5 * ((centres - 30) / 1.5) ** 2)
    e = np.arange(0.25, 80.0, 0.5)
    coarse = Spectrum.from_points(e, np.exp(-0.5 * ((e - 30) / 1.5) ** 2))
    smooth, stepped = onto_grid(coarse, grid).values, coarse.resample(grid).values
    assert np.max(np.abs(smooth - true)) < 0.3 * np.max(np.abs(stepped - true))
    assert np.sum(smooth * np.diff(grid)) == pytest.approx(np.sum(true * np.diff(grid)), rel=1e-3)
    fine = Spectrum.from_points(centres, true)
    assert np.array_equal(onto_grid(fine, grid).values, fine.resample(grid).values)
    on = Spectrum(grid, true)
    assert np.allclose(onto_grid(on, grid).values, true, rtol=1e-12, atol=1e-12)


def test_a_pristine_read_at_another_energy_scale_than_the_hosts_is_warned():
    band = _spec(_band())
    assert scale_warning(host_consistency(band.scale_energy(1.02), band), "p.csv", "H", "the", 1.0) is None
    warning = scale_warning(host_consistency(band.scale_energy(1.25), band), "p.csv", "H", "the", 1.0)
    assert warning.startswith("p.csv matches the pristine of H best with its energies × 0.800 more")
    assert "pass --energy-scale auto to fit it (here 0.8)" in warning


def test_swapped_files_are_told_by_the_local_modes_and_the_distance_to_the_host():
    rng = np.random.default_rng(3)
    band = _band()
    host, pristine, doped = _spec(band), _spec(band), _spec(band + _local_mode(0.05))
    right = swap_consistency(pristine, doped, host, host_consistency(pristine, host))
    assert right["swapped"] is False and swap_problem(right, "p.csv", "d.csv", "H", "the") is None
    swapped = swap_consistency(doped, pristine, host, host_consistency(doped, host))
    assert swapped["by_tail"] and swapped["by_distance"] and swapped["tail_excess"] > 0.04
    assert "d.csv (--pristine) and p.csv (--doped) look swapped" in swap_problem(swapped, "d.csv", "p.csv", "H", "the")
    # the same pair with 30 % counting noise on both: the right way round still passes
    noisy = [_spec(v * np.clip(1 + 0.3 * rng.standard_normal(E.size), 0, None)) for v in (band, band + _local_mode(0.05))]
    assert w1_noise(noisy[0]) > 4 * w1_noise(pristine)  # (the clean band has a step at 40 meV: some "noise")
    assert swap_consistency(*noisy, host, host_consistency(noisy[0], host))["swapped"] is False


def test_the_unit_is_the_one_that_puts_the_band_edge_at_the_hosts():
    thz_read_as_mev = 29.0 / 4.135667696  # a THz file's band edge, read in meV
    unit, note = choose_unit(thz_read_as_mev, "meV", {}, 29.0, window=PRISTINE_EDGE_WINDOW, label="f", host="H")
    assert unit == "THz" and "assumed THz from the host" in note
    unit, note = choose_unit(29.0, "THz", {"--unit": "THz", "header": "meV"}, 29.0, window=PRISTINE_EDGE_WINDOW,
                             label="f", host="H")
    assert unit == "THz" and "(--unit says THz, header says meV); THz won" in note
    assert choose_unit(29.0, "meV", {"header": "meV"}, 29.0, window=PRISTINE_EDGE_WINDOW, label="f", host="H") == ("meV", None)
    with pytest.raises(DefectnetError, match="far from H's simulated band edge 29.0 meV; expected within ×1.6; in meV"):
        choose_unit(29.0 * 4.135667696, "THz", {"header": "THz"}, 29.0, window=PRISTINE_EDGE_WINDOW, label="f", host="H")
    # a doped spectrum's edge may sit far above the host's (local modes), not far below
    assert choose_unit(29.0 * 3, "meV", {}, 29.0, window=DOPED_EDGE_WINDOW, label="f", host="H")[0] == "meV"
    assert choose_unit(10.0, "meV", {"header": "meV"}, 29.0, window=PRISTINE_EDGE_WINDOW, label="f", host="H",
                       cut=True) == ("meV", None)


def test_coverage_warns_with_the_numbers():
    (w,) = coverage_warnings({"p.csv": 40.0, "d.csv": 10.0}, 29.1, "GaAs")
    assert w.startswith("d.csv stops at 10.0 meV, inside the bands of GaAs (its simulated band edge is 29.1 meV)")
    (w,) = coverage_warnings({"p.csv": 40.0, "d.csv": 40.0}, 29.1, "GaAs", {"Si": 37.4, "C": 67.8})
    assert "stop at 40.0 meV, below where the simulated signatures of C (67.8 meV) reach 99 %" in w
    assert coverage_warnings({"p.csv": 80.0, "d.csv": 80.0}, 29.1, "GaAs", {"C": 67.8}) == []


def test_a_noisy_flat_background_is_taken_off_a_trend_is_not():
    from defectnet.checks import above_background, band_edge
    from defectnet.spectrum import Spectrum

    rng = np.random.default_rng(0)
    e = np.linspace(0, 500, 641)
    c = 0.5 * (e[1:] + e[:-1])
    bands = np.exp(-0.5 * ((c - 20) / 5) ** 2)
    level = 2e-3
    noisy = bands + level + level * rng.standard_normal(c.size)  # counts of a weak background: scatter ~ level
    s = above_background(Spectrum(e, np.clip(noisy, 0, None)))
    assert np.all(s.values[c > 100] <= 6 * level) and np.median(s.values[c > 250]) == 0.0
    assert band_edge(Spectrum(e, np.clip(noisy, 0, None))) < 40  # not ~375 meV: the background's own quantile
    falling = bands + 0.01 * np.exp(-c / 150) * (1 + 0.3 * rng.standard_normal(c.size))  # a trend: kept
    np.testing.assert_array_equal(above_background(Spectrum(e, np.clip(falling, 0, None))).values,
                                  np.clip(falling, 0, None))


def test_noise_is_not_counted_as_unexplained():
    from defectnet.checks import unexplained_warning

    fit = {"residual_fraction": 0.54, "residual_range_mev": (11.1, 26.6)}
    assert "54 %" in unexplained_warning(fit)
    assert unexplained_warning(fit, noise_share=0.5) is None  # √(0.54² − 0.5²) = 0.20: within the 30 %
    said = unexplained_warning(fit, noise_share=0.2)
    assert "54 %" in said and "50 % beyond its noise" in said
