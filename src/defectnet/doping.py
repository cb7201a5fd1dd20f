"""Doped supercells: dopant specs, near-cubic supercells and seeded substitution.

A dopant is given as ``El@Site:fraction`` (``Si@Ga:0.02``) or ``El:fraction`` (site chosen
automatically); fractions are atomic fractions of the whole supercell (``0.01`` or ``1%``).
A fraction that cannot be realised exactly in the supercell is rounded to whole atoms and
the realised value is reported.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
from ase import Atoms

from defectnet.elements import NOBLE_GASES, check_element, mass_amu
from defectnet.errors import DefectnetError

DEFAULT_SUPERCELL_ATOMS = (433, 500)
_SPEC = re.compile(r"^\s*([A-Z][a-z]?)\s*(?:@\s*([A-Z][a-z]?))?\s*:\s*([0-9.eE+-]+)\s*(%?)\s*$")


@dataclass(frozen=True)
class DopantSpec:
    """A requested dopant: element, host site element (None = automatic), target fraction."""

    element: str
    site: str | None
    fraction: float  # atomic fraction of the whole supercell

    def __str__(self) -> str:
        site = f"@{self.site}" if self.site else ""
        return f"{self.element}{site}:{self.fraction:g}"


def parse_dopants(text: str, *, vocabulary_only: bool = False) -> list[DopantSpec]:
    """Parse ``"Si@Ga:0.02,Zn@Ga:0.5%"`` into dopant specs.

    Any element but a noble gas can be simulated; ``vocabulary_only`` restricts dopants to
    the model's vocabulary (Z = 1–56 without noble gases).

    Raises
    ------
    DefectnetError
        On a malformed item, an unknown element, a fraction outside (0, 1), or a repeated dopant.
    """
    specs = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        m = _SPEC.match(item)
        if m is None:
            raise DefectnetError(
                f"bad dopant spec {item!r}; expected El@Site:fraction or El:fraction, e.g. Si@Ga:0.02 or Zn:0.5%"
            )
        element, site, number, percent = m.groups()
        check_element(element, dopant=vocabulary_only)
        if element in NOBLE_GASES:
            raise DefectnetError(f"{element!r} is a noble gas; it does not substitute into a crystal")
        if site:
            check_element(site)
        try:
            fraction = float(number) / (100.0 if percent else 1.0)
        except ValueError:
            raise DefectnetError(f"bad fraction {number!r} in dopant spec {item!r}; expected a number") from None
        if not 0.0 < fraction < 1.0:
            raise DefectnetError(f"fraction {fraction:g} in {item!r} is outside (0, 1); give e.g. 0.01 or 1%")
        specs.append(DopantSpec(element, site, fraction))
    if not specs:
        raise DefectnetError("no dopants given; expected e.g. --dopants Ge:0.01,Sn:0.004")
    seen = [(s.element, s.site) for s in specs]
    if len(set(seen)) != len(seen):
        raise DefectnetError(f"a dopant is repeated in {text!r}")
    return specs


def auto_site(element: str, host_elements: list[str]) -> str:
    """Host element a dopant most plausibly replaces when the user gave no site.

    Rule (cheap, chemical): a dopant more electronegative than the host's mean goes on the
    anion-like site, otherwise on the cation-like site; within that group, the site whose
    electronegativity and covalent radius are closest. One-element hosts are trivial.
    """
    from pymatgen.core.periodic_table import Element

    hosts = sorted(set(host_elements) - {element}) or sorted(set(host_elements))
    if len(hosts) == 1:
        return hosts[0]
    chi = {h: Element(h).X for h in hosts}
    mean_chi = float(np.mean(list(chi.values())))
    d = Element(element)
    side = [h for h in hosts if (chi[h] >= mean_chi) == (d.X >= mean_chi)] or hosts

    def distance(h):
        e = Element(h)
        return abs(e.X - d.X) + abs((e.atomic_radius or 1.0) - (d.atomic_radius or 1.0))

    return min(side, key=distance)


@lru_cache(maxsize=256)
def _best_shape(cell_key: tuple, k: int) -> tuple[tuple, float]:
    from ase.build.supercells import eval_length_deviation, find_optimal_cell_shape

    cell = np.array(cell_key).reshape(3, 3)
    P = find_optimal_cell_shape(cell, k, "sc", verbose=False)
    return tuple(map(tuple, P.astype(int))), float(eval_length_deviation(P @ cell, "sc"))


def choose_supercell(primitive: Atoms, n_atoms=DEFAULT_SUPERCELL_ATOMS, *, max_tries: int = 6) -> np.ndarray:
    """Integer matrix P (3, 3) making ``P @ cell`` near-cubic with a number of atoms in range.

    Parameters
    ----------
    primitive : ase.Atoms
        The (relaxed) primitive cell.
    n_atoms : int or (int, int)
        Target number of atoms: a range (inclusive), or one number (the closest multiple of
        the primitive size is used).
    """
    n_prim = len(primitive)
    if np.isscalar(n_atoms):
        k_values = [max(1, int(round(n_atoms / n_prim)))]
    else:
        lo, hi = n_atoms
        k_values = list(range(int(np.ceil(lo / n_prim)), hi // n_prim + 1))
        if not k_values:
            raise DefectnetError(
                f"no supercell of a {n_prim}-atom cell has {lo}–{hi} atoms; give another --supercell-atoms"
            )
    if len(k_values) > max_tries:  # each shape search costs ~0.7 s: sample the range evenly
        k_values = [k_values[i] for i in np.linspace(0, len(k_values) - 1, max_tries).round().astype(int)]
    cell_key = tuple(np.round(primitive.cell.array, 6).ravel())
    shapes = [(_best_shape(cell_key, k), k) for k in k_values]
    (P, _), _ = min(shapes, key=lambda s: (round(s[0][1], 3), -s[1]))
    return np.array(P, dtype=int)


def min_width_ang(cell) -> float:
    """Smallest perpendicular width of a cell (Å): the distance between opposite faces."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    return float(min(volume / np.linalg.norm(np.cross(cell[i - 2], cell[i - 1])) for i in range(3)))


def supercell_for_width(primitive: Atoms, min_width: float = 9.5, *, max_atoms: int = 256) -> np.ndarray:
    """Smallest near-cubic supercell matrix whose perpendicular widths are all ≥ ``min_width`` Å.

    Used for the force-constant supercell of a pristine host: force constants are cut at
    half the width, so ~10 Å keeps the couplings that matter for a PDoS.
    """
    n_prim = len(primitive)
    cell_key = tuple(np.round(primitive.cell.array, 6).ravel())
    k = max(1, int(np.floor(min_width**3 / primitive.get_volume())))
    best = None
    while k * n_prim <= max_atoms:
        P, _ = _best_shape(cell_key, k)
        width = min_width_ang(np.array(P) @ primitive.cell.array)
        if best is None or width > best[1]:
            best = (P, width)
        if width >= min_width:
            break
        k += 1
    if best is None:  # a primitive cell larger than max_atoms: it is its own supercell
        return np.eye(3, dtype=int)
    return np.array(best[0], dtype=int)


@dataclass
class Substitution:
    """Which atoms of a supercell were replaced, and the realised concentrations."""

    indices: dict[str, list[int]]  # dopant key "El@Site" -> supercell atom indices
    requested: dict[str, float]  # dopant key -> requested fraction
    counts: dict[str, int] = field(default_factory=dict)
    concentrations: dict[str, float] = field(default_factory=dict)  # per dopant *element*, atomic fraction

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def dopant_indices(self) -> np.ndarray:
        """(n_dopants,) supercell indices of every substituted atom, sorted."""
        return np.array(sorted(i for v in self.indices.values() for i in v), dtype=int)


def substitute(supercell: Atoms, specs: list[DopantSpec], rng: np.random.Generator) -> tuple[Atoms, Substitution]:
    """Replace host atoms by dopants at seeded random positions.

    Parameters
    ----------
    supercell : ase.Atoms
        Pristine supercell (N atoms).
    specs : list of DopantSpec
        Each dopant's element, site (None = :func:`auto_site`) and fraction of N.
    rng : numpy.random.Generator
        Source of randomness; same seed, same placement.

    Returns
    -------
    doped : ase.Atoms
        A copy with the dopants' symbols and masses.
    substitution : Substitution
        Indices, requested and realised counts/fractions. Counts are ``round(fraction * N)``.
    """
    n = len(supercell)
    symbols = supercell.get_chemical_symbols()
    host_elements = sorted(set(symbols))
    free = {el: [i for i, s in enumerate(symbols) if s == el] for el in host_elements}
    sub = Substitution(indices={}, requested={})
    new_symbols = list(symbols)
    for spec in specs:
        site = spec.site or auto_site(spec.element, host_elements)
        if site not in free:
            raise DefectnetError(f"site {site!r} of {spec} is not a host element; the host has {', '.join(host_elements)}")
        if site == spec.element:
            raise DefectnetError(f"{spec}: a dopant cannot replace its own element")
        count = int(round(spec.fraction * n))
        if count == 0:
            raise DefectnetError(
                f"{spec}: fraction {spec.fraction:g} is less than one atom in a {n}-atom supercell "
                f"(smallest is {1 / n:.4g}); give a larger fraction or more --supercell-atoms"
            )
        if count > len(free[site]):
            raise DefectnetError(
                f"{spec}: {count} atoms requested but only {len(free[site])} {site} sites are left in the {n}-atom supercell"
            )
        chosen = sorted(rng.choice(free[site], size=count, replace=False).tolist())
        free[site] = [i for i in free[site] if i not in set(chosen)]
        for i in chosen:
            new_symbols[i] = spec.element
        key = f"{spec.element}@{site}"
        sub.indices[key] = chosen
        sub.requested[key] = spec.fraction
        sub.counts[key] = count
        sub.concentrations[spec.element] = sub.concentrations.get(spec.element, 0.0) + count / n
    doped = supercell.copy()
    doped.set_chemical_symbols(new_symbols)
    doped.set_masses([mass_amu(s) for s in new_symbols])  # set_chemical_symbols keeps old masses
    return doped, sub
