"""Host-site analysis: coordination, bond length, oxidation state, ionic character."""

import pytest
from ase.build import bulk

from defectnet.errors import DefectnetError
from defectnet.sites import analyse_sites, ionic_sites, to_structure


def test_rocksalt_and_zincblende_sites_have_their_textbook_coordination_and_bonds():
    nacl = {s.element: s for s in analyse_sites(to_structure(bulk("NaCl", "rocksalt", a=5.64)))}
    assert nacl["Na"].coordination == nacl["Cl"].coordination == 6
    assert nacl["Na"].bond_length == pytest.approx(5.64 / 2, abs=0.01)  # Å
    assert (nacl["Na"].oxidation_state, nacl["Cl"].oxidation_state) == (1, -1)
    gaas = {s.element: s for s in analyse_sites(to_structure(bulk("GaAs", "zincblende", a=5.65)))}
    assert gaas["Ga"].coordination == 4
    assert gaas["Ga"].bond_length == pytest.approx(5.65 * 3**0.5 / 4, abs=0.01)
    # Pauling: 1 - exp(-Δχ²/4); Δχ(Na, Cl) = 2.23, Δχ(Ga, As) = 0.37
    assert nacl["Na"].ionic_character == pytest.approx(0.71, abs=0.01)
    assert gaas["Ga"].ionic_character == pytest.approx(0.03, abs=0.01)


def test_ionic_sites_are_the_mostly_ionic_ones():
    assert ionic_sites(bulk("NaCl", "rocksalt", a=5.64)) == {"Na": 1, "Cl": -1}
    assert ionic_sites(bulk("ZnO", "wurtzite", a=3.25, c=5.21)) == {"Zn": 2, "O": -2}  # Δχ 1.79
    assert ionic_sites(bulk("GaN", "wurtzite", a=3.19, c=5.19)) == {}  # Δχ 1.23
    assert ionic_sites(bulk("Si", "diamond", a=5.43)) == {}
    assert ionic_sites(bulk("GaN", "wurtzite", a=3.19, c=5.19), min_ionic_character=0.3) == {"Ga": 3, "N": -3}


def test_bad_structures_are_refused_in_one_line():
    from ase import Atoms

    with pytest.raises(DefectnetError, match="no atoms"):
        to_structure(Atoms())
    with pytest.raises(DefectnetError, match="expected an ase.Atoms"):
        to_structure("GaAs")
