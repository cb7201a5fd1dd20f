"""Element vocabulary, masses and neutron cross sections.

Dopants come from Z = 1–56 without the noble gases (51 elements), as in the published
model. Hosts may contain any element the potential covers. Masses are standard atomic
weights (amu) and neutron total bound scattering cross sections (barn, Sears 1992) come
from the maintained ``periodictable`` package, never typed by hand.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import periodictable

from defectnet.errors import DefectnetError

NOBLE_GASES = frozenset({"He", "Ne", "Ar", "Kr", "Xe", "Rn", "Og"})
MAX_DOPANT_Z = 56

#: Dopant vocabulary, ordered by atomic number (the model's output order).
DOPANTS: tuple[str, ...] = tuple(
    periodictable.elements[z].symbol
    for z in range(1, MAX_DOPANT_Z + 1)
    if periodictable.elements[z].symbol not in NOBLE_GASES
)

_SYMBOLS = {el.symbol: el for el in periodictable.elements if el.number > 0}


def check_element(symbol: str, *, dopant: bool = False) -> str:
    """Return ``symbol`` if it is a real element (and in the dopant vocabulary if ``dopant``)."""
    if symbol not in _SYMBOLS or _SYMBOLS[symbol].number > 118:
        raise DefectnetError(f"unknown element {symbol!r}; expected a symbol such as 'Si' or 'Ga'")
    if dopant and symbol not in DOPANTS:
        what = "a noble gas" if symbol in NOBLE_GASES else f"Z = {_SYMBOLS[symbol].number}"
        raise DefectnetError(
            f"{symbol!r} ({what}) is not in the dopant vocabulary (Z = 1–{MAX_DOPANT_Z} without noble gases)"
        )
    return symbol


def atomic_fractions(symbols) -> dict[str, float]:
    """{element: atomic fraction} of a list of chemical symbols (a cell's composition)."""
    els, counts = np.unique(np.asarray(symbols), return_counts=True)
    return {str(e): float(c) / len(symbols) for e, c in zip(els, counts)}


def atomic_number(symbol: str) -> int:
    return _SYMBOLS[check_element(symbol)].number


@lru_cache(maxsize=None)
def mass_amu(symbol: str) -> float:
    """Standard atomic weight in amu."""
    return float(_SYMBOLS[check_element(symbol)].mass)


@lru_cache(maxsize=None)
def neutron_cross_section_barn(symbol: str) -> float:
    """Total bound scattering cross section σ = σ_coh + σ_inc in barn (Sears 1992)."""
    sigma = _SYMBOLS[check_element(symbol)].neutron.total
    if sigma is None:
        raise DefectnetError(f"no neutron cross section is tabulated for {symbol!r}")
    return float(sigma)


def neutron_weight(symbol: str) -> float:
    """σ/m (barn/amu): the weight of an element's partial PDoS in the GPDoS."""
    return neutron_cross_section_barn(symbol) / mass_amu(symbol)


@lru_cache(maxsize=None)
def element_features(symbol: str) -> np.ndarray:
    """Physical descriptors of an element, shape (N_FEATURES,), float32.

    Order: Z, mass (amu), covalent radius (Å), Pauling electronegativity, group, period,
    σ/m (barn/amu), row-block index (s=0, p=1, d=2, f=3). Missing values become 0.
    """
    from pymatgen.core.periodic_table import Element

    el = Element(check_element(symbol))
    with warnings.catch_warnings():  # pymatgen warns for every missing value; those become 0 here
        warnings.simplefilter("ignore")
        radius = el.atomic_radius_calculated or el.atomic_radius or 0.0
        chi = el.X if np.isfinite(el.X) else 0.0
    block = {"s": 0, "p": 1, "d": 2, "f": 3}.get(el.block, 0)
    try:
        sigma_over_m = neutron_weight(symbol)
    except DefectnetError:
        sigma_over_m = 0.0
    return np.array(
        [el.Z, mass_amu(symbol), float(radius), chi, el.group, el.row, sigma_over_m, block],
        dtype=np.float32,
    )


N_FEATURES = 8
