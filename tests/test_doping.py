import numpy as np
import pytest
from ase.build import bulk

from defectnet.doping import (
    DopantSpec,
    auto_site,
    choose_supercell,
    min_width_ang,
    parse_dopants,
    substitute,
)
from defectnet.elements import mass_amu
from defectnet.errors import DefectnetError


def test_parse_dopants_accepts_sites_fractions_and_percent():
    specs = parse_dopants("Si@Ga:0.02, Zn@Ga:0.5%,Be:1e-2")
    assert specs == [DopantSpec("Si", "Ga", 0.02), DopantSpec("Zn", "Ga", 0.005), DopantSpec("Be", None, 0.01)]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("Ge", "bad dopant spec"),
        ("Ge:abc", "bad dopant spec"),
        ("Xx:0.01", "unknown element"),
        ("Kr:0.01", "noble gas"),
        ("Ge:1.5", "outside (0, 1)"),
        ("Ge:0", "outside (0, 1)"),
        ("Ge@Qq:0.1", "unknown element"),
        ("Ge:0.1,Ge:0.2", "repeated"),
        ("", "no dopants"),
    ],
)
def test_bad_dopant_specs_give_one_line_errors(text, fragment):
    with pytest.raises(DefectnetError) as err:
        parse_dopants(text)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_vocabulary_only_rejects_heavy_dopants():
    assert parse_dopants("U:0.01")[0].element == "U"  # simulate: any element
    with pytest.raises(DefectnetError, match="not in the dopant vocabulary"):
        parse_dopants("U:0.01", vocabulary_only=True)


def test_auto_site_follows_chemistry():
    assert auto_site("Ge", ["Si"]) == "Si"
    assert auto_site("Zn", ["Ga", "As"]) == "Ga"  # p-type on the cation site
    assert auto_site("Se", ["Ga", "As"]) == "As"  # n-type on the anion site
    assert auto_site("Al", ["Zn", "O"]) == "Zn"
    assert auto_site("N", ["Zn", "O"]) == "O"


def test_supercell_in_range_and_near_cubic():
    si = bulk("Si", "diamond", a=5.43)
    P = choose_supercell(si, (433, 500))
    n = len(si) * round(abs(np.linalg.det(P)))
    assert 433 <= n <= 500
    cell = P @ si.cell.array
    # near-cubic: the smallest face-to-face width is close to the cube root of the volume
    assert min_width_ang(cell) > 0.85 * abs(np.linalg.det(cell)) ** (1 / 3)


def test_supercell_impossible_range_is_an_error():
    big = bulk("Si", "diamond", a=5.43, cubic=True).repeat((3, 3, 3))  # 216 atoms
    with pytest.raises(DefectnetError, match="no supercell"):
        choose_supercell(big, (433, 500))


def test_substitution_counts_masses_and_determinism():
    sc = bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2))  # 64 atoms
    specs = [DopantSpec("Ge", "Si", 0.05), DopantSpec("B", None, 0.02)]
    a, sub = substitute(sc, specs, np.random.default_rng(7))
    b, _ = substitute(sc, specs, np.random.default_rng(7))
    assert sub.counts == {"Ge@Si": 3, "B@Si": 1}  # round(0.05*64)=3, round(0.02*64)=1
    assert sub.concentrations["Ge"] == pytest.approx(3 / 64)
    assert a.get_chemical_symbols() == b.get_chemical_symbols()
    ge = [i for i, s in enumerate(a.get_chemical_symbols()) if s == "Ge"]
    assert a.get_masses()[ge] == pytest.approx(mass_amu("Ge"))
    assert not set(sub.indices["Ge@Si"]) & set(sub.indices["B@Si"])


@pytest.mark.parametrize(
    "spec, fragment",
    [
        (DopantSpec("Ge", "Si", 0.001), "less than one atom"),
        (DopantSpec("Ge", "Ga", 0.1), "not a host element"),
        (DopantSpec("Si", "Si", 0.1), "its own element"),
        (DopantSpec("Ge", "Si", 0.99), None),
    ],
)
def test_impossible_fractions_are_errors(spec, fragment):
    sc = bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2))
    specs = [spec] if fragment else [DopantSpec("Ge", "Si", 0.6), DopantSpec("C", "Si", 0.6)]
    with pytest.raises(DefectnetError) as err:
        substitute(sc, specs, np.random.default_rng(0))
    if fragment:
        assert fragment in str(err.value)
