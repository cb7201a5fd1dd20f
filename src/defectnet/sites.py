"""A host's sites as the dopant rules see them: oxidation state, coordination, bonds, ionicity.

:func:`analyse_sites` describes each host element once (:class:`Site`); :func:`ionic_sites`
names the mostly ionic ones. :func:`to_structure` turns an ase.Atoms or pymatgen structure
into the ordered pymatgen Structure both work on.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from defectnet.elements import check_element
from defectnet.errors import DefectnetError

#: Nearest neighbours are atoms within (1 + BOND_TOLERANCE) × the shortest distance.
BOND_TOLERANCE = 0.15


@dataclass(frozen=True)
class Site:
    """What the sources need to know about one host element."""

    element: str
    oxidation_state: int | None  # None if unknown or not an integer (mixed valence)
    coordination: int  # most common nearest-neighbour count over the element's sites
    bond_length: float  # mean nearest-neighbour distance, Å (rounded to 0.01 Å for caching)
    ionic_character: float  # Pauling fraction in [0, 1], mean over nearest-neighbour bonds

    @property
    def ionic(self) -> bool:
        return bool(self.oxidation_state)


@cache
def element_data(symbol: str):
    from pymatgen.core import Element

    return Element(symbol)


def as_int_oxidation(value: float | None) -> int | None:
    if value is None or abs(value - round(value)) > 1e-6:
        return None
    return int(round(value))


@lru_cache(maxsize=65536)
def guess_oxidation_states(formula: str) -> dict[str, float]:
    """Most probable oxidation state per element ({} if pymatgen finds none, e.g. MgB2)."""
    from pymatgen.core import Composition

    try:
        guesses = Composition(formula).oxi_state_guesses(max_sites=-1)
    except ValueError:  # cannot reduce the formula, or no oxidation-state data
        return {}
    return dict(guesses[0]) if guesses else {}


def to_structure(structure):
    """An ordered pymatgen Structure from an ase.Atoms or pymatgen (I)Structure."""
    from ase import Atoms
    from pymatgen.core import IStructure

    if isinstance(structure, Atoms):
        if len(structure) == 0:
            raise DefectnetError("the structure has no atoms")
        for symbol in set(structure.get_chemical_symbols()):
            check_element(symbol)
        if structure.cell.rank != 3:
            raise DefectnetError("the structure needs a 3-D periodic cell (its ase cell is not full rank)")
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_structure(structure)
    if isinstance(structure, IStructure):  # Structure is a subclass
        if len(structure) == 0:
            raise DefectnetError("the structure has no atoms")
        if not structure.is_ordered:
            raise DefectnetError("disordered structures (partial occupancies) are not supported")
        for el in structure.composition.elements:
            check_element(el.symbol)
        return structure
    raise DefectnetError(
        f"expected an ase.Atoms or pymatgen Structure, got {type(structure).__name__}"
    )


def given_oxidation_states(structure) -> dict[str, float] | None:
    """Per-element mean oxidation state if every site of ``structure`` is decorated."""
    states: dict[str, list[float]] = defaultdict(list)
    for site in structure:
        oxi = getattr(site.specie, "oxi_state", None)
        if oxi is None:
            return None
        states[site.specie.symbol].append(float(oxi))
    return {el: float(np.mean(v)) for el, v in states.items()}


def analyse_sites(structure) -> list[Site]:
    """One :class:`Site` per host element: oxidation state, coordination, bonds, ionicity."""
    symbols = [site.specie.symbol for site in structure]
    oxidation = given_oxidation_states(structure)
    if oxidation is None:
        oxidation = guess_oxidation_states(structure.composition.reduced_formula)

    # Nearest neighbours: within (1 + BOND_TOLERANCE) of each atom's shortest distance.
    cutoff = 4.0  # Å; grown until every atom has neighbours and the whole shell fits
    while True:
        centres, others, _, dists = structure.get_neighbor_list(cutoff)
        shortest = np.full(len(structure), np.inf)
        np.minimum.at(shortest, centres, dists)
        needed = float(shortest.max()) * (1 + BOND_TOLERANCE) + 1e-6
        if needed <= cutoff:
            break
        if cutoff > 20.0:
            raise DefectnetError("an atom has no neighbour within 20 Å; is the cell sensible?")
        cutoff = 1.5 * cutoff if math.isinf(needed) else needed
    chi = {el: element_data(el).X for el in set(symbols)}
    coordination: dict[str, list[int]] = defaultdict(list)
    bonds: dict[str, list[float]] = defaultdict(list)
    ionicity: dict[str, list[float]] = defaultdict(list)
    for i, el in enumerate(symbols):
        mask = centres == i
        d = dists[mask]
        near = d <= d.min() * (1 + BOND_TOLERANCE)
        bonded = others[mask][near]
        coordination[el].append(len(bonded))
        bonds[el].extend(d[near].tolist())
        delta = np.array([chi[el] - chi[symbols[j]] for j in bonded], dtype=float)
        delta = np.nan_to_num(delta)  # an element without a Pauling value bonds covalently
        ionicity[el].append(float(np.mean(1.0 - np.exp(-0.25 * delta**2))))
    return [
        Site(
            element=el,
            oxidation_state=as_int_oxidation(oxidation.get(el)),
            coordination=Counter(coordination[el]).most_common(1)[0][0],
            bond_length=round(float(np.mean(bonds[el])), 2),
            ionic_character=float(np.mean(ionicity[el])),
        )
        for el in sorted(set(symbols), key=symbols.index)
    ]


def ionic_sites(structure, min_ionic_character: float = 0.5) -> dict[str, int]:
    """Host elements whose bonds are mostly ionic → their oxidation state.

    Parameters
    ----------
    structure : ase.Atoms or pymatgen Structure
    min_ionic_character : float
        Pauling fractional ionic character 1 − exp(−Δχ²/4), mean over the site's
        nearest-neighbour bonds; 0.5 is Δχ ≈ 1.67 (NaI 0.53, ZnO 0.55, AlN 0.40, CuI 0.13).

    Returns
    -------
    dict of str to int
        Only sites with an integer oxidation state (none for elemental or intermetallic hosts).
    """
    return {s.element: s.oxidation_state for s in analyse_sites(to_structure(structure))
            if s.oxidation_state and s.ionic_character >= min_ionic_character}
