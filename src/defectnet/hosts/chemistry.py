"""Element data for host decoration: the allowed elements, oxidation states, radii and bonds.

:func:`host_elements` lists the elements a host may contain; :func:`oxidation_states`,
:func:`electronegativity`, :func:`covalent_radius` and :func:`shannon_radius` read pymatgen's
and ASE's element tables (cached); :func:`bond_length` predicts a cation–anion bond length,
Å. The module-level tables (cation pools, dimer and oxidant states, default anions) are the
chemistry behind the decoration rules of :mod:`defectnet.hosts.candidates`.
"""

from __future__ import annotations

import math
from functools import lru_cache

MAX_HOST_Z = 83
EXCLUDED_ELEMENTS = frozenset({"He", "Ne", "Ar", "Kr", "Xe", "Rn", "Tc", "Pm"})
# never cations by default (only where a pattern names them, e.g. N5+ in nitrates)
NON_CATIONS = frozenset({"H", "N", "O", "F", "Cl", "Br", "I"})
# nonmetal cations: only in low-coordinated sites (BO3, CO3, PO4, SO4 groups)
NONMETAL_CATIONS = frozenset({"B", "C", "N", "P", "S", "Se"})
# platinum-group metals and gold: square-planar d8 / metallic chemistry that ionic-radius rules do not describe
NOBLE_METALS = frozenset({"Ru", "Rh", "Pd", "Os", "Ir", "Pt", "Au"})
# formal states that really are metal–metal dimers (Hg2²⁺, Ga2⁴⁺, Cd2²⁺): not single-ion cations
DIMER_STATES = frozenset({("Hg", 1), ("Ga", 2), ("In", 2), ("Cd", 1)})
# strong oxidants: only with O²⁻ / F⁻ (Pb⁴⁺ oxidises Te²⁻; PbTe4-type decorations are nonsense)
OXIDANT_STATES = frozenset(
    {
        ("Pb", 4),
        ("Tl", 3),
        ("Bi", 5),
        ("Ce", 4),
        ("Pr", 4),
        ("Tb", 4),
        ("Mn", 4),
        ("Mn", 7),
        ("Ni", 3),
        ("Ni", 4),
        ("Co", 4),
        ("Fe", 4),
        ("Cu", 3),
        ("Ag", 2),
        ("Ag", 3),
        ("Cr", 6),
    }
)
HARD_ANIONS = frozenset({"O", "F"})
DEFAULT_ANIONS: dict[int, tuple[str, ...]] = {
    -1: ("F", "Cl", "Br", "I"),
    -2: ("O", "S", "Se", "Te"),
    -3: ("N", "P", "As", "Sb"),
    -4: ("C", "Si", "Ge", "Sn"),
}
EN_TOLERANCE = 0.3  # χ(cation) may exceed χ(anion) by this much (Pauling units)

_ROMAN = {
    "I": 1,
    "II": 2,
    "III": 3,
    "IV": 4,
    "V": 5,
    "VI": 6,
    "VII": 7,
    "VIII": 8,
    "IX": 9,
    "X": 10,
    "XI": 11,
    "XII": 12,
    "XIV": 14,
}


# ===================================================================== element data
@lru_cache(maxsize=None)
def host_elements() -> tuple[str, ...]:
    """Elements a host may contain (Z ≤ 83, no noble gases, no Tc/Pm), by Z."""
    from ase.data import chemical_symbols

    return tuple(s for s in chemical_symbols[1 : MAX_HOST_Z + 1] if s not in EXCLUDED_ELEMENTS)


@lru_cache(maxsize=None)
def oxidation_states(el: str) -> dict[int, bool]:
    """Known oxidation states of ``el`` → whether pymatgen calls the state common."""
    from pymatgen.core import Element

    e = Element(el)
    common = set(e.common_oxidation_states)
    return {int(q): q in common for q in sorted(common | set(e.icsd_oxidation_states)) if q != 0}


@lru_cache(maxsize=None)
def electronegativity(el: str) -> float:
    from pymatgen.core import Element

    x = Element(el).X
    return float(x) if math.isfinite(x) else 1.5


@lru_cache(maxsize=None)
def covalent_radius(el: str) -> float:
    """Cordero et al. (2008) covalent radius, Å (as tabulated by ASE)."""
    from ase.data import atomic_numbers, covalent_radii

    return float(covalent_radii[atomic_numbers[el]])


@lru_cache(maxsize=None)
def _shannon_table(el: str, q: int) -> dict[int, float]:
    """CN → Shannon ionic radius (Å) of el^q (high spin where spin matters)."""
    from pymatgen.core import Element

    table = Element(el).data.get("Shannon radii", {}).get(str(q), {})
    out: dict[int, float] = {}
    for roman, by_spin in table.items():
        cn = _ROMAN.get(roman.rstrip("PYSQ"))  # 'IVSQ', 'IVPY' → 4
        if cn is None:
            continue
        entry = by_spin.get("High Spin") or next(iter(by_spin.values()))
        out.setdefault(cn, float(entry["ionic_radius"]))
    return out


def shannon_radius(el: str, q: int, cn: int, *, exact: bool) -> float | None:
    """Shannon ionic radius (Å) of el^q at coordination ``cn``.

    ``exact``: the CN must be tabulated (±1 above CN 6, where tables are sparse); otherwise
    the nearest tabulated CN is used. None when nothing fits.
    """
    table = _shannon_table(el, q)
    if not table:
        return None
    if cn in table:
        return table[cn]
    nearest = min(table, key=lambda c: (abs(c - cn), c))
    if exact and not (cn > 6 and abs(nearest - cn) <= 1):
        return None
    return table[nearest]


@lru_cache(maxsize=None)
def bond_length(cat: str, qc: int, cn_c: int, an: str, qa: int, cn_a: int, *, exact: bool = True) -> float | None:
    """Predicted cation–anion bond length, Å (None if the cation does not fit the CN).

    Pauling ionic character w = 1 − exp(−Δχ²/4) mixes the Shannon ionic-radius sum (ionic
    limit; good for NaCl, MgO) with the covalent-radius sum (covalent limit; GaAs, CdTe).
    """
    rc = shannon_radius(cat, qc, cn_c, exact=exact)
    if rc is None:
        return None
    d_cov = covalent_radius(cat) + covalent_radius(an)
    ra = shannon_radius(an, qa, cn_a, exact=False)
    if ra is None:  # As3-, P3-, C4-, ...: these bonds are covalent anyway
        return d_cov
    w = 1.0 - math.exp(-((electronegativity(an) - electronegativity(cat)) ** 2) / 4.0)
    return w * (rc + ra) + (1.0 - w) * d_cov
