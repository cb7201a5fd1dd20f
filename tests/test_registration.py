from pathlib import Path

import numpy as np
import pytest

from defectnet.errors import DefectnetError
from defectnet.io import read_spectrum
from defectnet.registration import energy_map, registered, warp
from defectnet.unmix import SignatureBasis, unmix

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"


@pytest.fixture(scope="module")
def gaas():
    b = SignatureBasis.load(EXAMPLE / "basis.npz")
    p, d = (read_spectrum(EXAMPLE / f"{n}.csv", column="gpdos").values for n in ("pristine", "doped"))
    return b, p, d


def softened(spectrum, grid, scale):
    """``spectrum`` (per meV) with every energy × ``scale``, area kept: a potential whose bonds are softer."""
    e = grid.centers
    return np.interp(e / scale, e, spectrum, left=0.0, right=0.0) / scale


def test_a_basis_registered_on_its_own_pristine_is_unchanged(gaas):
    b, _, _ = gaas
    same = registered(b, b.pristine["gpdos"])
    for kind in b.curves:
        np.testing.assert_allclose(same.curves[kind], b.curves[kind], atol=1e-6 * np.abs(b.curves[kind]).max())
    assert same.config["registration"]["kind"] == "gpdos"


def test_a_uniformly_softer_host_gives_a_uniform_map_and_the_mix_reads_right_again(gaas):
    """Everything ×0.93 (BAs with 7net-l3i5 against 7net-0): the basis as simulated no longer
    explains the signature; registered on the measured pristine it reads Si and Zn as before."""
    b, p, d = gaas
    g = b.grid
    p2, d2 = softened(p, g, 0.93), softened(d, g, 0.93)
    x, y = energy_map(b.pristine["gpdos"], p2, g)
    inside = (x > 5) & (x < 30)
    np.testing.assert_allclose(y[inside] / x[inside], 0.93, atol=0.02)
    assert warp([60.0], (x, y))[0] == pytest.approx(0.93 * 60, rel=0.02)  # local modes move with the band top
    plain, rigid = unmix(p, d, b, kind="gpdos"), unmix(p2, d2, b, kind="gpdos")
    reg = registered(b, p2)
    fixed = unmix(p2, d2, reg, kind="gpdos")
    w = np.sqrt(g.widths)
    cos = (reg.pristine["gpdos"] * w) @ (p2 * w) / np.linalg.norm(reg.pristine["gpdos"] * w) / np.linalg.norm(p2 * w)
    assert cos > 0.99
    assert fixed.fit["residual_fraction"] < 0.5 * rigid.fit["residual_fraction"]
    for el in ("Si", "Zn"):
        assert fixed[el]["concentration"] == pytest.approx(plain[el]["concentration"], rel=0.2)
    for kind in reg.curves:  # each curve keeps its area (~0: a redistribution)
        np.testing.assert_allclose(reg.curves[kind] @ g.widths, b.curves[kind] @ g.widths, atol=1e-3)


def test_registration_refuses_another_host_or_unit(gaas):
    b, p, _ = gaas
    with pytest.raises(DefectnetError, match="band top is ×2.5"):
        registered(b, softened(p, b.grid, 2.5))
    with pytest.raises(DefectnetError, match="no positive area"):
        registered(b, np.zeros_like(p))
    with pytest.raises(DefectnetError, match="shape"):
        registered(b, p[:10])
