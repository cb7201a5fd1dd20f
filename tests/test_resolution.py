"""Resolution models: values against their cited sources, parsing, round trips."""

import json
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from defectnet.errors import DefectnetError
from defectnet.resolution import (
    FWHM_PER_SIGMA,
    DirectGeometry,
    Gaussian,
    Polynomial,
    Resins,
    available,
    from_dict,
    get_resolution,
)


def test_fwhm_per_sigma():
    # Half maximum of exp(-x²/2σ²) at x = σ√(2 ln 2).
    assert math.exp(-((FWHM_PER_SIGMA / 2) ** 2) / 2) == pytest.approx(0.5)


def test_gaussian_is_constant():
    g = Gaussian(1.5)
    assert_allclose(g.fwhm_mev([0.0, 10.0, 400.0]), 1.5)
    assert Gaussian(fwhm_mev=2.0).width_mev == 2.0
    assert g.fwhm_mev(np.zeros((2, 3))).shape == (2, 3)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_gaussian_rejects_nonpositive(bad):
    with pytest.raises(DefectnetError):
        Gaussian(bad)


def test_polynomial_and_floor():
    p = Polynomial((1.0, 0.02, 1e-4))
    assert_allclose(p.fwhm_mev([0.0, 100.0]), [1.0, 1.0 + 2.0 + 1.0])
    neg = Polynomial((-1.0, 0.01), floor_mev=0.05)
    assert_allclose(neg.fwhm_mev([0.0, 200.0]), [0.05, 1.0])


def test_tosca_is_resins_and_matches_the_abins_polynomial():
    from resins import Instrument

    e = np.array([0.0, 5.0, 20.0, 100.0, 250.0, 400.0, 500.0])
    tosca = get_resolution("tosca")
    assert isinstance(tosca, Resins) and tosca.instrument == "TOSCA"
    # ResINS called directly: σ of its Gaussian, → FWHM.
    direct = Instrument.from_default("TOSCA").get_resolution_function("AbINS").get_characteristics(e[:, None])
    assert_allclose(tosca.fwhm_mev(e), FWHM_PER_SIGMA * direct["sigma"], rtol=1e-14)
    # The old hand-written preset: Abins (Mantid scripts/abins/parameters.py) σ = 2.5 + 0.005 ω + 1e-7 ω²,
    # ω and σ in cm⁻¹, evaluated here in cm⁻¹ and converted. ResINS 0.1.0 agrees to 4.3e-11 relative.
    cm1_per_mev = 8.065543937
    w = e * cm1_per_mev
    sigma_cm = 2.5 + 0.005 * w + 1e-7 * w**2
    expected = FWHM_PER_SIGMA * sigma_cm / cm1_per_mev
    assert_allclose(tosca.fwhm_mev(e), expected, rtol=1e-10)
    # Sanity against the literature scale: ΔE/E of order 1–2 % at 100–400 meV.
    rel = get_resolution("tosca").fwhm_mev(e[3:]) / e[3:]  # 100–500 meV
    assert np.all((rel > 0.01) & (rel < 0.02))


def test_merlin_reproduces_spinw_table():
    # SpinW sw_res docs: MERLIN, Ei = 50 meV, 300 Hz, FWHM (meV) at energy transfer E (meV).
    # ResINS's PyChop fit (package G) is within 0.08 meV of it; the hand-written shape within 0.01.
    e = np.array([0, 10, 20, 30, 40, 49.0])
    fwhm = np.array([2.31, 1.80, 1.37, 1.02, 0.78, 0.67])
    assert_allclose(get_resolution("merlin-ei50").fwhm_mev(e), fwhm, atol=0.08)
    assert_allclose(DirectGeometry(50.0).fwhm_mev(e), fwhm, atol=0.01)


def test_direct_instruments_through_resins():
    from resins import Instrument

    e = np.array([0.0, 100.0, 300.0, 450.0])
    mari = get_resolution("mari:500:400:A")
    ref = Instrument.from_default("MARI").get_resolution_function(
        chopper_package="A", e_init=500.0, chopper_frequency=400).get_characteristics(e[:, None])["sigma"]
    assert_allclose(mari.fwhm_mev(e), FWHM_PER_SIGMA * ref, rtol=1e-12)
    f = mari.fwhm_mev(np.array([-20.0, 0.0, 500.0, 700.0]))
    assert f[0] == f[1] and f[2] == f[3]  # held at the E = 0 and E = Ei values
    assert get_resolution("merlin:50:300:G") == get_resolution("merlin-ei50").__class__(
        "MERLIN", None, {"e_init": 50.0, "chopper_frequency": 300, "chopper_package": "G"}, name="merlin:50:300:g")
    assert get_resolution("let:10").ei_mev == 10.0  # frequencies left to ResINS's defaults


@pytest.mark.parametrize("spec, pattern", [
    ("merlin:500", r"ResINS cannot give the resolution of MERLIN .*e_init"),  # beyond MERLIN's Ei range
    ("mari:500:333", "ResINS cannot give"),  # not a chopper frequency MARI runs at
    ("mari:abc", "Ei must be a number"),
    ("mari:500:400:A:x", "expected <instrument>"),
    ("vision", "ResINS 0.1.0's VISION model cannot be evaluated"),
])
def test_resins_refusals_are_one_line(spec, pattern):
    with pytest.raises(DefectnetError, match=pattern) as err:
        get_resolution(spec)
    assert "\n" not in str(err.value)


def test_direct_geometry_shape_and_scaling():
    d = get_resolution("direct:600")
    e = np.linspace(0, 600, 61)
    f = d.fwhm_mev(e)
    assert np.all(np.diff(f) < 0), "widest at the elastic line, shrinking toward E = Ei"
    assert f[0] == pytest.approx(0.0462 * 600, rel=0.01)
    # Same relative shape at another Ei.
    assert_allclose(DirectGeometry(100.0).fwhm_mev(50.0), 2 * DirectGeometry(50.0).fwhm_mev(25.0))
    # Outside 0 ≤ E ≤ Ei the width is held at the end values.
    assert_allclose(d.fwhm_mev([-10.0, 700.0]), [f[0], f[-1]])


def test_string_specs():
    assert get_resolution("gaussian:1.0").fwhm_mev(50.0) == 1.0
    assert get_resolution(" TOSCA ").name == "tosca"
    assert get_resolution(2.5).width_mev == 2.5
    assert get_resolution("direct:300").ei_mev == 300.0
    model = get_resolution("tosca")
    assert get_resolution(model) is model


@pytest.mark.parametrize("spec", ["maps", "gaussian:", "gaussian:abc", "direct:-5", "", None, True])
def test_bad_specs_raise(spec):
    with pytest.raises(DefectnetError):
        get_resolution(spec)


def test_unknown_name_lists_choices():
    with pytest.raises(DefectnetError) as err:
        get_resolution("hrpd")
    for name in available():
        assert name in str(err.value)


@pytest.mark.parametrize("spec", ["tosca", "merlin-ei50", "mari:300:250:S", "direct:250", "gaussian:0.7"])
def test_dict_round_trip(spec):
    model = get_resolution(spec)
    d = json.loads(json.dumps(model.to_dict()))
    again = from_dict(d)
    assert again == model
    assert type(model).from_dict(d) == model
    assert_allclose(again.fwhm_mev([1.0, 50.0]), model.fwhm_mev([1.0, 50.0]), rtol=0)


def test_from_dict_rejects_unknown():
    with pytest.raises(DefectnetError):
        from_dict({"model": "lorentzian", "fwhm_mev": 1})
    with pytest.raises(DefectnetError):
        from_dict({"model": "gaussian", "fwhm_mev": 1, "shape": "x"})
    with pytest.raises(DefectnetError):
        Gaussian.from_dict(get_resolution("tosca").to_dict())
