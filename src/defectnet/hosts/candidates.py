"""Candidate hosts: curated experimental structures and decorated crystal prototypes.

Two pure, deterministic sources feed ``defectnet hosts build``:

* :func:`curated_hosts` — the systems users ask about (Si, GaAs, GaN, ZnO, CdTe, SrTiO3,
  CuInSe2, Cu2ZnSnS4, MgB2, ...) built from experimental room-temperature lattice constants
  (the reference is recorded on each host). Internal coordinates of the complex structures are
  the published ones to ~1e-3; the build relaxes everything with the MLIP anyway.
* :func:`generate_candidates` — prototypes decorated with charge-balanced element sets.
  Prototypes come from pymatgen's copy of the AFLOW prototype encyclopedia (Mehl et al.,
  Comput. Mater. Sci. 136, S1, 2017) and, where the encyclopedia has no entry (kesterite,
  double perovskites, delafossite), from ``ase.spacegroup.crystal``.

Decoration rules (each one a filter; a candidate must pass all; rule numbers are cited in code):

1. **Elements**: Z ≤ 83 (what SevenNet-0/CHGNet were trained on), no noble gases, no
   radioactive Tc/Pm.
2. **Charge balance**: every prototype lists oxidation-state patterns, one formal state per site
   (e.g. zincblende: I–VII, II–VI, III–V, IV–IV); an element may take a state only if it is
   in pymatgen's ``common_oxidation_states`` or ``icsd_oxidation_states``; each pattern sums
   to zero over the primitive cell.
3. **Coordination**: a cation must have a Shannon radius tabulated for the coordination
   number it has in the prototype (Shannon lists what is observed: no Ca²⁺ in tetrahedra,
   no Ga³⁺ in 12-fold sites). Nonmetal cations (B, C, N, P, S, Se) only in sites with
   CN ≤ 4. Sites whose pattern names an explicit element list (lone-pair Sn²⁺/Pb²⁺, ...)
   take the nearest tabulated CN.
4. **Electronegativity**: every cation less electronegative (Pauling) than every anion,
   within 0.3 (PbTe: χ(Pb) = 2.33 > χ(Te) = 2.1).
5. **Size match**: each cation–anion bond length is predicted as the Pauling-ionicity
   weighted mix of the Shannon ionic-radius sum and the covalent-radius sum (Cordero 2008),
   w = 1 − exp(−Δχ²/4); the lattice is scaled by the weighted geometric mean of
   predicted/prototype bond ratios, and the spread of those ratios (max/min, the
   generalised Goldschmidt tolerance) must be ≤ the prototype's ``max_mismatch``
   (1.08 for cubic perovskites, 1.10 for double perovskites, 1.15 otherwise).
6. **Redox**: strong oxidants (Pb⁴⁺, Tl³⁺, Bi⁵⁺, Ce⁴⁺, Mn⁴⁺, Ni³⁺, Cu³⁺, Ag²⁺, Cr⁶⁺, ...) only
   with O²⁻/F⁻; states that are really metal–metal dimers (Hg⁺, Ga²⁺, In²⁺, Cd⁺) are not used;
   platinum-group metals and Au are left out of the default cation pools (square-planar d⁸ and
   metallic chemistry that radius rules do not describe).
7. **Distances** after scaling: no atom pair closer than 0.7× (cation–cation) or 0.9×
   (anion–anion) the covalent-radius sum.
8. **Uniqueness**: one candidate per (reduced formula, space group, primitive-cell size) — the
   size keeps polytypes such as wurtzite and 4H apart; curated hosts win.

Candidates are ranked within a prototype by a plausibility score (size match, common
oxidation states, no 4f elements) and interleaved across prototypes so that any prefix of
the list covers every prototype family. The seed only breaks score ties.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product
from typing import Callable, Iterable

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.hosts.library import Host, reduced_formula, spacegroup_of

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
NN_SHELL = 1.2  # neighbours within 1.2 × the shortest cation–anion distance form the first shell
MIXED_SHELL = 1.4  # a second counter-ion species belongs to the shell if it comes this close
MAX_PRIMITIVE_ATOMS = 20
AFLOW_REFERENCE = "AFLOW prototype encyclopedia (Mehl et al., Comput. Mater. Sci. 136, S1, 2017) via pymatgen"

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


# ===================================================================== templates
@dataclass(frozen=True)
class Template:
    """A primitive cell whose sites carry slot labels instead of elements (reference lengths, Å)."""

    cell: np.ndarray  # (3, 3) rows, Å
    frac: np.ndarray  # (n, 3) fractional
    slots: tuple[str, ...]  # slot label of each site

    def atoms(self, mapping: dict[str, str] | None = None):
        from ase import Atoms

        symbols = [(mapping or {}).get(s, s) for s in self.slots]
        # placeholder labels that are not elements become X (Z = 0) until decorated
        from ase.data import atomic_numbers

        numbers = [atomic_numbers.get(s, 0) for s in symbols]
        return Atoms(numbers=numbers, cell=self.cell, scaled_positions=self.frac, pbc=True)


def _primitive(cell, frac, labels) -> Template:
    """spglib's standard primitive cell of a labelled structure."""
    import spglib

    uniq = list(dict.fromkeys(labels))
    numbers = [uniq.index(s) + 1 for s in labels]
    prim = spglib.standardize_cell((np.asarray(cell), np.asarray(frac), numbers), to_primitive=True, symprec=1e-4)
    if prim is None:
        raise DefectnetError("spglib could not find the primitive cell of a prototype template")
    lat, pos, nums = prim
    order = np.lexsort((pos[:, 2], pos[:, 1], pos[:, 0], nums))
    return Template(
        cell=np.array(lat), frac=np.mod(np.array(pos)[order], 1.0), slots=tuple(uniq[n - 1] for n in nums[order])
    )


def _crystal(labels: list[str], basis: list, spacegroup: int, cellpar, setting: int = 1) -> Template:
    """Template from Wyckoff positions (``ase.spacegroup.crystal``) with slot labels."""
    from ase.spacegroup import crystal

    # crystal() needs element symbols: stand-ins by Z, mapped back to labels afterwards
    stand_ins = ["H", "He", "Li", "Be", "B", "C", "N", "O"][: len(labels)]
    if np.isscalar(cellpar):
        cellpar = [cellpar] * 3 + [90, 90, 90]
    conv = crystal(
        stand_ins, basis=basis, spacegroup=spacegroup, cellpar=cellpar, setting=setting, primitive_cell=False
    )
    lookup = dict(zip(stand_ins, labels))
    return _primitive(conv.cell.array, conv.get_scaled_positions(), [lookup[s] for s in conv.get_chemical_symbols()])


@lru_cache(maxsize=1)
def _aflow_library() -> list:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pymatgen.analysis.prototypes._data import AFLOW_PROTOTYPE_LIBRARY
    return AFLOW_PROTOTYPE_LIBRARY


def _aflow(label: str, tag: str | None = None) -> Template:
    """Template from pymatgen's AFLOW prototype entry (slots = the prototype's own elements)."""
    hits = [
        e
        for e in _aflow_library()
        if e["tags"]["aflow"] == label and (tag is None or tag in (e["tags"]["strukturbericht"], e["tags"]["mineral"]))
    ]
    if len(hits) != 1:
        raise DefectnetError(f"AFLOW prototype {label!r} ({tag}) matched {len(hits)} entries; expected one")
    s = hits[0]["snl"].structure
    return _primitive(s.lattice.matrix, s.frac_coords, [site.specie.symbol for site in s])


def _layered_double_perovskite() -> Template:
    """AA'BB'X6: A/A' in layers along c, B/B' in rock-salt order (20 atoms, from a 2×2×2 perovskite)."""
    a = 4.0
    labels, frac = [], []
    for i, j, k in product(range(2), repeat=3):
        labels.append("B" if (i + j + k) % 2 == 0 else "B'")
        frac.append((i / 2, j / 2, k / 2))
        labels.append("A" if k == 0 else "A'")
        frac.append(((i + 0.5) / 2, (j + 0.5) / 2, (k + 0.5) / 2))
        for axis in range(3):
            p = [i / 2, j / 2, k / 2]
            p[axis] += 0.25
            labels.append("X")
            frac.append(tuple(p))
    return _primitive(np.eye(3) * 2 * a, np.array(frac), labels)


# ===================================================================== prototypes
@dataclass(frozen=True)
class SiteSpec:
    charge: int
    pool: tuple[str, ...] | None  # explicit elements, or None for the default pool of the charge


def _parse_pattern(text: str) -> tuple[SiteSpec, ...]:
    """``"3:Bi,Sb -2:S,Se,Te"`` → one SiteSpec per slot."""
    out = []
    for tok in text.split():
        q, _, pool = tok.partition(":")
        out.append(SiteSpec(int(q), tuple(pool.split(",")) if pool else None))
    return tuple(out)


@dataclass(frozen=True)
class Prototype:
    """A structure type and the ways it may be decorated.

    Attributes
    ----------
    key : str
        Registry key, also the suffix of candidate names (``ZnO-rocksalt``).
    family : str
        Chemical family reported on hosts.
    slots : tuple of str
        Template site labels, in the order the patterns list their charges.
    patterns : tuple of str
        Oxidation-state patterns, one ``charge[:El,El]`` token per slot.
    template : callable
        Returns the :class:`Template` (cached).
    source : str
        Where the template comes from.
    may_share : tuple of tuple
        Slot groups that may hold the same element (otherwise every slot gets its own).
    max_mismatch : float
        Largest allowed spread of predicted/prototype bond-length ratios.
    prior : float
        Added to the plausibility score (polytypes and exotic types rank lower).
    known : tuple of str
        Experimentally known members of the structure type, one element per slot. A
        decoration's plausibility falls with its distance from the nearest known member in
        Pettifor's Mendeleev numbers (his structure maps: compounds close in Mendeleev
        number share structure types).
    """

    key: str
    family: str
    slots: tuple[str, ...]
    patterns: tuple[str, ...]
    template: Callable[[], Template]
    source: str
    may_share: tuple[tuple[str, ...], ...] = ()
    max_mismatch: float = 1.15
    prior: float = 0.0
    known: tuple[str, ...] = ()  # real members, one element per slot ("Ga As"): plausibility anchors


def _p(key, family, slots, patterns, template, source, **kw) -> Prototype:
    return Prototype(key, family, tuple(slots), tuple(patterns), lru_cache(maxsize=1)(template), source, **kw)


def _af(label, tag=None):
    return lambda: _aflow(label, tag), f"aflow:{label}" + (f" ({tag})" if tag else "")


# registry: key -> Prototype (order = interleaving order of the candidate list)
PROTOTYPES: dict[str, Prototype] = {}


def _register(*protos: Prototype) -> None:
    for p in protos:
        if p.key in PROTOTYPES:
            raise ValueError(f"duplicate prototype key {p.key}")
        PROTOTYPES[p.key] = p


# the registry reads as a table: one prototype per block
# fmt: off
_TET = ("1 -1", "2 -2", "3 -3", "4 -4")


def _k(*members: str) -> tuple[str, ...]:
    return tuple(members)


_register(
    # --- binaries
    _p("zincblende", "tetrahedral AB", ("Zn", "S"), _TET, *_af("AB_cF8_216_c_a"),
       known=_k("Ga As", "Al P", "In Sb", "B N", "Si C", "Cd Te", "Zn Se", "Hg Te", "Cu Cl", "Cu I", "Ag I",
                "Be Se", "Ga P", "In As", "Al Sb", "B P")),
    _p("wurtzite", "tetrahedral AB", ("Zn", "S"), _TET, *_af("AB_hP4_186_b_b"),
       known=_k("Ga N", "Al N", "In N", "Zn O", "Be O", "Cd S", "Cd Se", "Si C", "Ag I", "Mg Te")),
    _p("rocksalt", "rocksalt AB", ("Na", "Cl"), ("1 -1", "2 -2", "3 -3"), *_af("AB_cF8_225_a_b"),
       known=_k("Mg O", "Ca O", "Ba O", "Ni O", "Li F", "K Cl", "Ag Cl", "Pb Te", "Sn Te", "Pb S", "Sc N", "La N",
                "Y N", "Ca S", "Sr Se", "Eu O", "Mn O", "Cd O", "La Sb", "Gd N")),
    _p("CsCl", "CsCl AB", ("Cs", "Cl"), ("1 -1",), *_af("AB_cP2_221_b_a"), known=_k("Cs I", "Tl Br", "Tl Cl", "Cs Br")),
    _p("fluorite", "fluorite AX2", ("Ca", "F"), ("2 -1", "4 -2"), *_af("AB2_cF12_225_a_c"),
       known=_k("Sr F", "Ba F", "Cd F", "Pb F", "Ce O", "Zr O", "Hf O", "Sr Cl", "Pr O", "Eu F")),
    _p("antifluorite", "antifluorite A2X", ("F", "Ca"), ("1 -2", "2 -4"), *_af("AB2_cF12_225_a_c"),
       known=_k("Li O", "Na O", "K O", "Rb O", "Li S", "Na S", "Na Se", "K S", "Mg Si", "Mg Ge", "Mg Sn", "Be C")),
    _p("rutile", "rutile AX2", ("Ti", "O"), ("4 -2", "2 -1"), *_af("A2B_tP6_136_f_a"),
       known=_k("Sn O", "Ge O", "Pb O", "Mn O", "Mg F", "Zn F", "Ni F", "Co F", "Fe F", "Mn F", "Cr O", "V O", "Nb O")),
    _p("CdI2", "layered AX2", ("Cd", "I"), ("2 -1", "4 -2"), *_af("AB2_hP3_164_a_d"),
       known=_k("Pb I", "Mg I", "Mg Br", "Ca I", "Fe Br", "Mn I", "Co I", "Sn S", "Sn Se", "Zr S", "Hf S", "Ti S",
                "Zr Se")),
    _p("corundum", "corundum A2X3", ("Al", "O"), ("3 -2",), *_af("A2B3_hR10_167_c_e"),
       known=_k("Cr O", "Fe O", "V O", "Ti O", "Ga O", "Rh O")),
    _p("GeS", "IV-VI", ("Ge", "S"), ("2:Ge,Sn,Pb -2:S,Se,Te",), *_af("AB_oP8_62_c_c", "B16"),
       known=_k("Sn S", "Sn Se", "Ge Se")),
    _p("MoS2-2H", "transition-metal dichalcogenide", ("Mo", "S"),
       ("4:Mo,W,Nb,Ta,Ti,Zr,Hf,Sn -2:S,Se,Te",), *_af("AB2_hP6_194_c_f"),
       known=_k("Mo Se", "W S", "W Se", "Nb S", "Ta S", "Mo Te")),
    _p("tetradymite", "V2-VI3", ("Bi", "Te"), ("3:Bi,Sb,As -2:S,Se,Te",), *_af("A2B3_hR5_166_c_ac"),
       known=_k("Bi Se", "Sb Te")),
    # pymatgen's anatase entry has Ti 4-coordinated (O–O 2.05 Å): built from Wyckoff positions instead
    _p("anatase", "anatase AX2", ("Ti", "O"), ("4 -2",),
       lambda: _crystal(["Ti", "O"], [(0, 0, 0), (0, 0, 0.2081)], 141, [3.7845, 3.7845, 9.5143, 90, 90, 90]),
       "ase.spacegroup.crystal I41/amd (TiO2 anatase; Wyckoff 1963)", known=_k("Ti O")),
    _p("baddeleyite", "baddeleyite AX2", ("Zr", "O"), ("4 -2",), *_af("A2B_mP12_14_2e_e"), known=_k("Hf O")),
    _p("cuprite", "cuprite A2X", ("Cu", "O"), ("1 -2",), *_af("A2B_cP6_224_b_a"), known=_k("Ag O")),
    _p("quartz", "quartz AX2", ("Si", "O"), ("4:Si,Ge -2:O,S",), *_af("A2B_hP9_152_c_a"), known=_k("Ge O")),
    _p("cotunnite", "cotunnite AX2", ("Pb", "Cl"), ("2 -1",), *_af("A2B_oP12_62_2c_c", "C23"),
       known=_k("Pb Br", "Ba Cl", "Ba Br", "Ba I", "Eu Cl")),
    _p("ReO3", "ReO3 AX3", ("Re", "O"), ("6 -2", "3 -1"), *_af("A3B_cP4_221_d_a"),
       known=_k("W O", "Sc F", "Fe F", "Ga F", "In F", "Ti F", "Nb F")),
    _p("BiI3", "layered AX3", ("Bi", "I"), ("3 -1",), *_af("AB3_hR8_148_c_f"),
       known=_k("Sb I", "As I", "Cr Cl", "Cr Br", "Cr I", "Fe Cl", "Ti Cl", "V Cl", "Sc Cl")),
    _p("Li3N", "A3X", ("Li", "N"), ("1 -3",), *_af("A3B_hP4_191_bc_a")),
    _p("Na3As", "A3X", ("Na", "As"), ("1 -3",), *_af("AB3_hP8_194_c_bf"),
       known=_k("Na Sb", "K Sb", "Li P", "Li As", "K As", "Na P")),
    _p("hBN", "layered AB", ("B", "N"), ("3 -3",), *_af("AB_hP4_194_c_d")),
    _p("litharge", "IV-VI", ("Pb", "O"), ("2:Pb,Sn -2",), *_af("AB_tP4_129_a_c"), known=_k("Sn O")),
    _p("NiAs", "NiAs AB", ("Ni", "As"), ("2 -2",), *_af("AB_hP4_194_c_a"), prior=-0.3,
       known=_k("Ni S", "Fe S", "Co S", "Mn Te", "Cr Se", "Fe Se", "Co Se", "Ni Se", "Co Te", "Ni Te", "V S")),
    _p("pyrite", "pyrite AX2", ("Fe", "S"), ("2 -1:S,Se,Te",), *_af("AB2_cP12_205_a_c"), prior=-0.3,
       known=_k("Mn S", "Co S", "Ni S", "Zn S", "Ni Se", "Co Se")),
    _p("moissanite-4H", "tetrahedral AB", ("Si", "C"), ("2 -2", "3 -3", "4 -4"), *_af("AB_hP8_186_ab_ab"), prior=-0.5,
       known=_k("Al N", "Zn S", "Cd S")),
    # --- ternaries
    _p("perovskite", "perovskite", ("Ca", "Ti", "O"), ("2 4 -2", "1 5 -2", "3 3 -2", "1 2 -1"),
       *_af("AB3C_cP5_221_a_c_b"), max_mismatch=1.08,
       known=_k("Sr Ti O", "Ba Ti O", "K Ta O", "K Nb O", "Na Nb O", "Ba Zr O", "Ba Sn O", "Sr Zr O", "La Al O",
                "La Ga O", "K Mg F", "K Zn F", "Rb Ca F", "Cs Pb Br", "Cs Pb I", "Cs Sn I", "Cs Pb Cl", "Ba Hf O",
                "Sr Hf O", "Pb Ti O", "La Cr O", "Sr Sn O", "Na Mg F", "K Ni F", "K Co F", "K Mn F", "Cs Ca F")),
    _p("chalcopyrite", "chalcopyrite", ("Cu", "Fe", "S"), ("1 3 -2", "2 4 -3"), *_af("ABC2_tI16_122_a_b_d"),
       known=_k("Cu In S", "Cu In Se", "Cu Ga S", "Cu Ga Se", "Cu Al S", "Cu Al Se", "Ag Ga S", "Ag Ga Se",
                "Ag In S", "Ag In Se", "Cu In Te", "Zn Ge P", "Zn Si P", "Zn Sn P", "Cd Ge As", "Cd Si P",
                "Zn Ge As", "Cd Sn As", "Zn Sn As")),
    _p("spinel", "spinel", ("Mg", "Al", "O"), ("2 3 -2", "6 1 -2:O"), *_af("A2BC4_cF56_227_d_a_e"),
       known=_k("Zn Al O", "Zn Ga O", "Mg Ga O", "Mg Cr O", "Zn Cr O", "Mn Al O", "Fe Al O", "Co Al O", "Cd In S",
                "Zn Cr S", "Cd Cr Se", "Zn Cr Se", "Hg Cr S", "Mg In S", "Zn Fe O", "Mo Na O", "W Na O", "Mo Ag O")),
    _p("delafossite", "delafossite", ("Cu", "Al", "O"), ("1:Cu,Ag 3 -2:O",),
       lambda: _crystal(["Cu", "Al", "O"], [(0, 0, 0), (0, 0, 0.5), (0, 0, 0.1099)], 166,
                        [2.857, 2.857, 16.94, 90, 90, 120]),
       "ase.spacegroup.crystal R-3m (CuAlO2; Ishiguro et al., J. Solid State Chem. 40, 170, 1981)",
       known=_k("Cu Al O", "Cu Ga O", "Cu In O", "Cu Cr O", "Cu Fe O", "Cu Sc O", "Cu Y O", "Cu La O", "Ag In O",
                "Ag Ga O", "Ag Cr O", "Ag Fe O", "Ag Sc O")),
    _p("NaFeO2-alpha", "layered rocksalt", ("Na", "Cr", "S"), ("1 3 -2",), *_af("ABC2_hR4_166_a_b_c"),
       known=_k("Li Co O", "Li Ni O", "Na Co O", "Li Cr S", "Na In S", "Ag Cr S", "K Cr S", "Na Fe O", "Li Cr O",
                "Na Cr O", "Li V O", "Na Sc S", "Cu Cr S")),
    _p("ilmenite", "ilmenite", ("Fe", "Ti", "O"), ("2 4 -2", "1 5 -2"), *_af("AB3C_hR10_148_c_f_c"),
       known=_k("Mg Ti O", "Mn Ti O", "Ni Ti O", "Co Ti O", "Zn Ti O", "Cd Ti O", "Mg Ge O", "Zn Ge O", "Na Sb O")),
    _p("LiNbO3", "LiNbO3", ("Li", "Nb", "O"), ("1 5 -2", "2 4 -2"), *_af("ABC3_hR10_161_a_a_b"),
       known=_k("Li Ta O", "Zn Sn O", "Fe Ti O", "Mn Ti O")),
    _p("thiogallate", "defect chalcopyrite", ("Cd", "Al", "S"), ("2 3 -2",), *_af("A2BC4_tI14_82_bc_a_g"),
       known=_k("Cd Ga S", "Cd Ga Se", "Zn Ga S", "Zn In Se", "Hg Ga S", "Cd In Te")),
    _p("zircon", "zircon", ("Zr", "Si", "O"), ("4 4:Si,Ge -2:O", "3 5:P,As,V -2:O"), *_af("A4BC_tI24_141_h_b_a"),
       known=_k("Hf Si O", "Zr Ge O", "Y P O", "Y V O", "Lu P O", "Sc P O", "Gd V O", "Er P O", "Tb P O", "Yb P O",
                "Y As O", "Nd V O")),
    _p("matlockite", "mixed-anion matlockite", ("Pb", "F", "Cl"), ("2 -1:F -1:Cl,Br,I", "3 -2:O -1:Cl,Br,I"),
       *_af("ABC_tP6_129_c_a_c"),
       known=_k("Ba F Cl", "Sr F Cl", "Ca F Cl", "Ba F Br", "Ba F I", "Pb F Br", "Bi O Cl", "Bi O Br", "Bi O I",
                "La O Cl", "La O Br", "Y O Cl", "Sm O Cl", "Nd O Cl", "Gd O Cl", "Eu F Cl")),
    # MgAgAs type as the Nowotny-Juza I-II-V phase: I on 4b (octahedral), II on 4c (tetrahedral), V on 4a
    _p("half-Heusler", "Nowotny-Juza half-Heusler", ("Ag", "As", "Mg"), ("1 2 -3",), *_af("ABC_cF12_216_b_c_a"),
       known=_k("Li Zn As", "Li Zn P", "Li Zn N", "Li Mg N", "Li Mg P", "Li Mg As", "Li Cd P", "Li Cd As", "Li Zn Sb")),
    _p("calcite", "calcite (borate/carbonate/nitrate)", ("Ca", "C", "O"), ("2 4:C -2:O", "1 5:N -2:O", "3 3:B -2:O"),
       *_af("ABC3_hR10_167_a_b_e", "G0_1"),
       known=_k("Mg C O", "Fe C O", "Mn C O", "Zn C O", "Cd C O", "Co C O", "Ni C O", "Na N O", "Li N O", "In B O",
                "Sc B O", "Fe B O", "Lu B O", "Al B O", "V B O", "Cr B O")),
    _p("sulvanite", "sulvanite", ("Cu", "V", "S"), ("1 5:V,Nb,Ta -2:S,Se,Te",), *_af("A3B4C_cP8_215_d_e_a"),
       known=_k("Cu Nb S", "Cu Ta S", "Cu V Se", "Cu Nb Se", "Cu Ta Se", "Cu Nb Te", "Cu Ta Te")),
    _p("famatinite-cubic", "I3-V-VI4", ("Cu", "As", "S"), ("1 5:P,As,Sb -2:S,Se,Te",), *_af("AB3C4_cP8_215_a_c_e"),
       known=_k("Cu Sb S", "Cu Sb Se", "Cu P S")),
    _p("enargite", "I3-V-VI4", ("Cu", "As", "S"), ("1 5:P,As,Sb,V,Nb,Ta -2:S,Se,Te",), *_af("AB3C4_oP16_31_a_ab_2ab"),
       known=_k("Cu P S", "Cu As Se")),
    _p("chalcostibite", "I-V-VI2", ("Cu", "Sb", "S"), ("1:Cu,Ag 3:Sb,Bi,As -2:S,Se,Te",), *_af("AB2C_oP16_62_c_2c_c"),
       known=_k("Cu Sb Se", "Cu Bi S", "Cu Bi Se")),
    # --- quaternaries
    _p("stannite", "I2-II-IV-VI4", ("Cu", "Fe", "Sn", "S"), ("1 2 4 -2",), *_af("A2BC4D_tI16_121_d_a_i_b"),
       known=_k("Cu Zn Sn S", "Cu Cd Sn S", "Cu Zn Ge S", "Cu Zn Ge Se", "Cu Cd Sn Se", "Cu Cd Ge S", "Cu Hg Sn S",
                "Cu Mn Sn S", "Cu Co Sn S", "Ag Zn Sn S", "Ag Zn Sn Se", "Cu Zn Si S", "Cu Mg Sn S", "Li Zn Sn S")),
    _p("double-perovskite", "double perovskite", ("A", "B", "B'", "X"),
       ("2 2 6 -2:O", "2 3 5 -2:O", "3 2 4 -2:O", "1 1 3 -1"),
       lambda: _crystal(["A", "B", "B'", "X"], [(0.25, 0.25, 0.25), (0, 0, 0), (0.5, 0.5, 0.5), (0.25, 0, 0)],
                        225, 8.0),
       "ase.spacegroup.crystal Fm-3m (rock-salt ordered A2BB'X6, elpasolite)", max_mismatch=1.10,
       known=_k("Ba Mg W O", "Sr Mg W O", "Ba Mg Mo O", "Sr Mg Mo O", "Ba Zn W O", "Ba Ni W O", "Ba Co W O",
                "Sr Fe Mo O", "Ba Y Nb O", "Ba Sc Nb O", "Ba In Nb O", "Ba Y Ta O", "Ba Sc Ta O", "Ba Fe Nb O",
                "Sr Cr Mo O", "Ba Mg Te O", "Cs Ag Bi Br", "Cs Ag Bi Cl", "Cs Ag In Cl", "Cs Na In Cl", "Cs Na Bi Cl",
                "Cs Na Sb Cl", "K Na Al F", "Rb Na Al F", "Cs Na Y Cl", "Cs Li Y Cl", "Cs Na Sc Cl", "Cs Na Er Cl",
                "Cs Na La Cl", "La Mg Ti O", "La Ni Mn O", "La Co Mn O")),
    # ZrCuSiAs type; the AFLOW entry is the intermetallic ZrCuSiAs, too far from the ionic LaOCuS geometry
    _p("ZrCuSiAs", "layered oxychalcogenide (1111)", ("La", "Cu", "O", "S"),
       ("3 1:Cu,Ag -2:O -2:S,Se,Te", "2 1:Cu,Ag -1:F -2:S,Se,Te"),
       lambda: _crystal(["La", "O", "Cu", "S"], [(0.25, 0.25, 0.1486), (0.75, 0.25, 0), (0.75, 0.25, 0.5),
                                                 (0.25, 0.25, 0.6667)], 129, [3.9942, 3.9942, 8.5312, 90, 90, 90], 2),
       "ase.spacegroup.crystal P4/nmm (LaOCuS, ZrCuSiAs type)",
       known=_k("La Cu O Se", "La Cu O Te", "Bi Cu O Se", "Bi Cu O S", "Nd Cu O S", "Pr Cu O S", "Ce Cu O S",
                "La Ag O S", "La Ag O Se", "Sr Cu F S", "Ba Cu F S", "Ba Cu F Se", "Ba Cu F Te", "Sr Cu F Se")),
    _p("pyroxene", "pyroxene silicate", ("Ca", "Fe", "Si", "O"), ("2 2 4:Si,Ge -2:O", "1 3 4:Si,Ge -2:O"),
       *_af("ABC6D2_mC40_15_e_e_3f_f"),
       known=_k("Ca Mg Si O", "Ca Ni Si O", "Ca Co Si O", "Ca Mn Si O", "Na Al Si O", "Na Fe Si O", "Na Cr Si O",
                "Na Sc Si O", "Li Al Si O", "Li Fe Si O", "Li Sc Si O", "Na In Si O", "Li Cr Si O", "Na Ti Si O")),
    # --- quaternary and quinary: kesterite I(2a) I'(2c) II IV VI4 (I = I' is the quaternary kesterite)
    _p("kesterite", "kesterite", ("I1", "I2", "II", "IV", "VI"), ("1 1 2 4 -2",),
       lambda: _crystal(["I1", "I2", "II", "IV", "VI"],
                        [(0, 0, 0), (0, 0.5, 0.25), (0, 0.5, 0.75), (0, 0, 0.5), (0.756, 0.7566, 0.8722)],
                        82, [5.427, 5.427, 10.848, 90, 90, 90]),
       "ase.spacegroup.crystal I-4 (Cu2ZnSnS4; Schorr et al., Eur. J. Mineral. 19, 65, 2007)",
       may_share=(("I1", "I2"),),
       known=_k("Cu Cu Zn Sn S", "Cu Cu Zn Sn Se", "Cu Cu Zn Ge Se", "Cu Cu Zn Ge S", "Ag Ag Zn Sn S",
                "Cu Ag Zn Sn S", "Cu Ag Zn Sn Se", "Ag Cu Zn Sn S", "Li Cu Zn Sn S")),
    _p("layered-double-perovskite", "A-layered double perovskite", ("A", "A'", "B", "B'", "X"),
       ("1 3 2 6 -2:O", "1 3 3 5 -2:O"), _layered_double_perovskite,
       "cubic perovskite 2×2×2, A/A' layered, B/B' rock-salt (NaLaMgWO6 type)", max_mismatch=1.10,
       known=_k("Na La Mg W O", "Na La Mn W O", "Na La Co W O", "Na La Ni W O", "Na Nd Mg W O", "Na Y Mg W O",
                "K La Mg W O", "K La Mn W O", "Na La Fe W O", "Na Gd Mg W O", "Na La Mg Te O")),
)
# fmt: on


# ===================================================================== geometry analysis
@dataclass(frozen=True)
class _Geometry:
    """Per-prototype numbers needed to judge and scale a decoration (reference lengths, Å)."""

    cn: dict[str, int]  # slot -> coordination by the opposite role
    constraints: tuple[tuple[tuple[tuple[str, str], ...], float, float], ...]  # ((cat, an) pairs, d0 sum, weight)
    bridges: tuple[
        tuple[int, int, int, np.ndarray, np.ndarray], ...
    ]  # (anion idx, cat1 idx, cat2 idx, offset1, offset2)


def _roles(proto: Prototype) -> dict[str, int]:
    """slot -> +1 (cation) / -1 (anion), the same in every pattern."""
    signs = None
    for pat in proto.patterns:
        specs = _parse_pattern(pat)
        if len(specs) != len(proto.slots):
            raise ValueError(f"{proto.key}: pattern {pat!r} has {len(specs)} sites for {len(proto.slots)} slots")
        s = tuple(int(np.sign(sp.charge)) for sp in specs)
        if signs is not None and s != signs:
            raise ValueError(f"{proto.key}: patterns disagree on which sites are cations")
        signs = s
    return dict(zip(proto.slots, signs))


@lru_cache(maxsize=None)
def _geometry(key: str) -> _Geometry:
    from ase.neighborlist import neighbor_list

    proto = PROTOTYPES[key]
    t = proto.template()
    if set(t.slots) != set(proto.slots):
        raise ValueError(f"{key}: template slots {sorted(set(t.slots))} != declared {sorted(proto.slots)}")
    roles = _roles(proto)
    atoms = t.atoms()
    i_idx, j_idx, dist, vec, shifts = neighbor_list("ijdDS", atoms, cutoff=6.0)
    role = np.array([roles[s] for s in t.slots])
    opposite = role[i_idx] != role[j_idx]
    slot_of = np.array(t.slots)
    shells: dict[int, np.ndarray] = {}
    for i in range(len(atoms)):
        m = (i_idx == i) & opposite
        if not m.any():
            raise ValueError(f"{key}: site {i} ({t.slots[i]}) has no counter-ion within 6 Å")
        dmin = dist[m].min()
        # first shell per counter-ion slot (mixed-anion sites: PbFCl's Pb has 4 F + 5 Cl),
        # counting a slot only if it comes within MIXED_SHELL of the nearest counter-ion
        keep = np.zeros(len(dist), bool)
        for s in set(slot_of[j_idx[m]]):
            ms = m & (slot_of[j_idx] == s)
            ds = dist[ms].min()
            if ds <= MIXED_SHELL * dmin:
                keep |= ms & (dist <= NN_SHELL * ds + 1e-6)
        shells[i] = np.flatnonzero(keep)
    cn_by_slot: dict[str, list[int]] = {}
    for i, s in enumerate(t.slots):
        cn_by_slot.setdefault(s, []).append(len(shells[i]))
    cn = {s: Counter(v).most_common(1)[0][0] for s, v in cn_by_slot.items()}

    # bridging anions X between two different cation slots on a straight line (B–X–B')
    bridges, bridged_pairs = [], set()
    for i in range(len(atoms)):
        if role[i] > 0 or len(shells[i]) != 2:
            continue
        a, b = shells[i]
        if t.slots[j_idx[a]] == t.slots[j_idx[b]]:
            continue
        cosang = np.dot(vec[a], vec[b]) / (dist[a] * dist[b])
        if cosang < -0.98:
            bridges.append((i, int(j_idx[a]), int(j_idx[b]), shifts[a], shifts[b]))
            bridged_pairs.add(tuple(sorted(((t.slots[j_idx[a]], t.slots[i]), (t.slots[j_idx[b]], t.slots[i])))))

    # mean distance and count of each cation–anion pair type (counted from the cation side)
    sums: dict[tuple[str, str], list[float]] = {}
    for i in range(len(atoms)):
        if role[i] < 0:
            continue
        for n in shells[i]:
            sums.setdefault((t.slots[i], t.slots[j_idx[n]]), []).append(dist[n])
    constraints, used = [], set()
    for group in sorted(bridged_pairs):
        d0 = sum(float(np.mean(sums[p])) for p in group)
        constraints.append((group, d0, float(sum(len(sums[p]) for p in group))))
        used.update(group)
    for pair in sorted(sums):
        if pair not in used:
            constraints.append(((pair,), float(np.mean(sums[pair])), float(len(sums[pair]))))
    return _Geometry(cn=cn, constraints=tuple(constraints), bridges=tuple(bridges))


# ===================================================================== decoration
@dataclass(frozen=True)
class Decoration:
    """One charge-balanced assignment of elements to a prototype's slots."""

    prototype: str
    elements: tuple[str, ...]  # per slot
    charges: tuple[int, ...]  # per slot
    scale: float  # lattice scale factor applied to the template
    mismatch: float  # spread of predicted/template bond ratios (1 = perfect)
    bonds: dict  # (cation slot, anion slot) -> predicted length, Å
    score: float


def _pool(spec: SiteSpec, slot_cn: int) -> list[tuple[str, bool, bool]]:
    """(element, state is common, radius must match CN exactly) allowed on one site."""
    allowed = set(host_elements())
    if spec.charge < 0:
        names = spec.pool or DEFAULT_ANIONS.get(spec.charge, ())
        # an explicit anion list may use a state pymatgen does not list (S⁻ in the S2²⁻ dimer of pyrite)
        return [
            (el, oxidation_states(el).get(spec.charge, spec.pool is None), False)
            for el in names
            if el in allowed and (spec.pool is not None or spec.charge in oxidation_states(el))
        ]
    out = []
    names = spec.pool or [el for el in host_elements() if el not in NON_CATIONS | NOBLE_METALS]
    for el in names:
        states = oxidation_states(el)
        if el not in allowed or spec.charge not in states or (el, spec.charge) in DIMER_STATES:
            continue
        if spec.pool is None and el in NONMETAL_CATIONS and slot_cn > 4:
            continue
        out.append((el, states[spec.charge], spec.pool is None))
    return out


@lru_cache(maxsize=None)
def decorate(key: str, *, max_mismatch: float | None = None) -> tuple[Decoration, ...]:
    """Every decoration of prototype ``key`` that passes rules 1–6 (see module doc), unsorted (cached)."""
    proto = PROTOTYPES[key]
    geo = _geometry(key)
    t = proto.template()
    counts = Counter(t.slots)
    limit = max_mismatch or proto.max_mismatch
    share = {s: g for g in proto.may_share for s in g}
    log_limit = math.log(limit)
    out: list[Decoration] = []
    for pat in proto.patterns:
        specs = _parse_pattern(pat)
        total = sum(sp.charge * counts[s] for sp, s in zip(specs, proto.slots))
        if total != 0:
            raise ValueError(f"{key}: pattern {pat!r} leaves a charge of {total:+d} per cell")
        q = {s: sp.charge for s, sp in zip(proto.slots, specs)}
        pools = {s: _pool(sp, geo.cn[s]) for s, sp in zip(proto.slots, specs)}
        anions = [s for s in proto.slots if q[s] < 0]
        # depth-first over slots, anions first, so every rule is checked as soon as it can be
        # (a cation that does not fit is dropped before the next slot is tried)
        order = sorted(proto.slots, key=lambda s: (q[s] > 0, len(pools[s])))
        depth_of = {s: i for i, s in enumerate(order)}
        ready: list[list[int]] = [[] for _ in order]  # constraints complete at each depth
        for ci, (pairs, _, _) in enumerate(geo.constraints):
            ready[max(depth_of[x] for pair in pairs for x in pair)].append(ci)
        assigned: dict[str, tuple[str, bool, bool]] = {}

        def emit():
            combo = [assigned[s] for s in proto.slots]
            els = tuple(c[0] for c in combo)
            dec = _size_match(proto, geo, specs, els, [c[2] for c in combo], limit)
            n_uncommon = sum(not c[1] for c in combo)
            n_f = sum(57 <= _z(el) <= 71 and el != "La" for el in els)
            score = (
                proto.prior
                - math.log(dec[1]) / log_limit
                - 0.5 * n_uncommon
                - 0.25 * n_f
                - _distance_to_known(key, els) / 15.0
            )
            out.append(Decoration(key, els, tuple(sp.charge for sp in specs), dec[0], dec[1], dec[2], round(score, 6)))

        def visit(depth: int, lo: float, hi: float) -> None:
            if depth == len(order):
                emit()
                return
            s = order[depth]
            for cand in pools[s]:
                el = cand[0]
                if any(el == other[0] and o not in share.get(s, ()) for o, other in assigned.items()):
                    continue
                if q[s] > 0:  # all anions are assigned by now
                    an_els = [assigned[a][0] for a in anions]
                    if electronegativity(el) > min(electronegativity(a) for a in an_els) + EN_TOLERANCE:
                        continue
                    if (el, q[s]) in OXIDANT_STATES and not set(an_els) <= HARD_ANIONS:
                        continue
                assigned[s] = cand
                new_lo, new_hi, ok = lo, hi, True
                for ci in ready[depth]:
                    pairs, d0, _ = geo.constraints[ci]
                    d = 0.0
                    for cat, an in pairs:
                        b = bond_length(
                            assigned[cat][0],
                            q[cat],
                            geo.cn[cat],
                            assigned[an][0],
                            q[an],
                            geo.cn[an],
                            exact=assigned[cat][2],
                        )
                        if b is None:
                            ok = False
                            break
                        d += b
                    if not ok:
                        break
                    lg = math.log(d / d0)
                    new_lo, new_hi = min(new_lo, lg), max(new_hi, lg)
                    if new_hi - new_lo > log_limit:
                        ok = False
                        break
                if ok:
                    visit(depth + 1, new_lo, new_hi)
                del assigned[s]

        visit(0, math.inf, -math.inf)
    return tuple(out)


@lru_cache(maxsize=None)
def _known_members(key: str) -> np.ndarray:
    """Mendeleev numbers of the known members of a prototype, shape (n_known, n_slots)."""
    proto = PROTOTYPES[key]
    members = [m.split() for m in proto.known]
    if all(s in host_elements() for s in proto.slots):  # the prototype's own compound
        members.append(list(proto.slots))
    for m in members:
        if len(m) != len(proto.slots):
            raise ValueError(f"{key}: known member {m} does not have one element per slot")
    return np.array([[_mendeleev(el) for el in m] for m in members], dtype=float).reshape(-1, len(proto.slots))


@lru_cache(maxsize=None)
def _mendeleev(el: str) -> float:
    from pymatgen.core import Element

    return float(Element(el).mendeleev_no)


def _distance_to_known(key: str, els: tuple[str, ...]) -> float:
    """Mean per-site |ΔMendeleev number| to the nearest known member (0 for a known member)."""
    known = _known_members(key)
    if len(known) == 0:
        return 0.0
    m = np.array([_mendeleev(el) for el in els])
    return float(np.abs(known - m).mean(axis=1).min())


@lru_cache(maxsize=None)
def _z(el: str) -> int:
    from ase.data import atomic_numbers

    return atomic_numbers[el]


def _size_match(proto, geo, specs, els, exact, limit):
    """(scale, mismatch, bonds) if every bond is predictable and the ratios agree within ``limit``."""
    idx = {s: i for i, s in enumerate(proto.slots)}
    bonds, logs, weights = {}, [], []
    for pairs, d0, weight in geo.constraints:
        d = 0.0
        for cat, an in pairs:
            ic, ia = idx[cat], idx[an]
            if (cat, an) not in bonds:
                b = bond_length(
                    els[ic], specs[ic].charge, geo.cn[cat], els[ia], specs[ia].charge, geo.cn[an], exact=exact[ic]
                )
                if b is None:
                    return None
                bonds[(cat, an)] = b
            d += bonds[(cat, an)]
        logs.append(math.log(d / d0))
        weights.append(weight)
    mismatch = math.exp(max(logs) - min(logs))
    if mismatch > limit:
        return None
    scale = math.exp(float(np.average(logs, weights=weights)))
    return scale, mismatch, bonds


def build_structure(dec: Decoration):
    """The decorated, scaled primitive cell as ``ase.Atoms`` (bridging anions placed by bond lengths)."""
    proto = PROTOTYPES[dec.prototype]
    t = proto.template()
    geo = _geometry(dec.prototype)
    mapping = dict(zip(proto.slots, dec.elements))
    atoms = t.atoms(mapping)
    atoms.set_cell(t.cell * dec.scale, scale_atoms=True)
    if geo.bridges:
        pos = atoms.positions.copy()
        cell = atoms.cell.array
        for ix, c1, c2, s1, s2 in geo.bridges:
            p1 = atoms.positions[c1] + s1 @ cell
            p2 = atoms.positions[c2] + s2 @ cell
            d1 = dec.bonds[(t.slots[c1], t.slots[ix])]
            d2 = dec.bonds[(t.slots[c2], t.slots[ix])]
            pos[ix] = p1 + (p2 - p1) * d1 / (d1 + d2)
        atoms.positions = pos
        atoms.wrap()
    return atoms


def min_distance_ok(atoms, charges: dict[str, int] | None = None) -> bool:
    """No pair closer than 0.7× (cation–cation / any) or 0.9× (anion–anion) the covalent-radius sum."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, cutoff=4.0)
    if len(d) == 0:
        return True
    symbols = np.array(atoms.get_chemical_symbols())
    rc = np.array([covalent_radius(s) for s in symbols])
    factor = np.full(len(d), 0.7)
    if charges:
        q = np.array([charges.get(s, 0) for s in symbols])
        factor[(q[i] < 0) & (q[j] < 0)] = 0.9
    return bool(np.all(d >= factor * (rc[i] + rc[j]) - 1e-9))


@lru_cache(maxsize=None)
def _pair_min_distances(key: str) -> dict[tuple[str, str], float]:
    """Shortest distance (Å, template scale) between each pair of slots."""
    from ase.neighborlist import neighbor_list

    t = PROTOTYPES[key].template()
    i, j, d = neighbor_list("ijd", t.atoms(), cutoff=6.0)
    out: dict[tuple[str, str], float] = {}
    for a, b, x in zip(i, j, d):
        k = tuple(sorted((t.slots[a], t.slots[b])))
        out[k] = min(out.get(k, np.inf), float(x))
    return out


def _distances_ok(dec: Decoration) -> bool:
    """:func:`min_distance_ok` from the template's pair distances (uniform scaling, no bridges)."""
    proto = PROTOTYPES[dec.prototype]
    el = dict(zip(proto.slots, dec.elements))
    q = dict(zip(proto.slots, dec.charges))
    for (a, b), d in _pair_min_distances(dec.prototype).items():
        factor = 0.9 if q[a] < 0 and q[b] < 0 else 0.7
        if d * dec.scale < factor * (covalent_radius(el[a]) + covalent_radius(el[b])) - 1e-9:
            return False
    return True


@lru_cache(maxsize=None)
def _spacegroup(key: str, classes: tuple[int, ...]) -> tuple[int, str]:
    """Space group of the template with slots coloured by ``classes`` (equal element = equal class)."""
    from ase import Atoms

    proto = PROTOTYPES[key]
    t = proto.template()
    colour = dict(zip(proto.slots, classes))
    atoms = Atoms(numbers=[colour[s] + 1 for s in t.slots], cell=t.cell, scaled_positions=t.frac, pbc=True)
    return spacegroup_of(atoms)


def decoration_host(dec: Decoration, *, name: str | None = None) -> Host | None:
    """The unrelaxed candidate :class:`Host` of a decoration (None if it fails the distance rule)."""
    proto = PROTOTYPES[dec.prototype]
    ox = {el: q for el, q in zip(dec.elements, dec.charges)}
    geo = _geometry(dec.prototype)
    if not geo.bridges and not _distances_ok(dec):
        return None
    atoms = build_structure(dec)
    if len(atoms) > MAX_PRIMITIVE_ATOMS:
        return None
    if geo.bridges and not min_distance_ok(atoms, ox):
        return None
    classes = tuple(dec.elements.index(e) for e in dec.elements)
    formula = reduced_formula(atoms.get_chemical_symbols(), ox)
    return Host.from_atoms(
        atoms,
        name=name or f"{formula}-{proto.key}",
        source="prototype",
        prototype=proto.key,
        family=proto.family,
        reference=proto.source,
        oxidation_states=dict(sorted(ox.items(), key=lambda kv: kv[1], reverse=True)),
        decoration=dict(zip(proto.slots, dec.elements)),
        spacegroup=_spacegroup(dec.prototype, classes),
        provenance={
            "status": "candidate",
            "score": dec.score,
            "mismatch": round(dec.mismatch, 4),
            "scale": round(dec.scale, 4),
            "checks": {"charge_balanced": True, "min_distance_ok": True},
        },
    )


# ===================================================================== the candidate list
def structure_key(host: Host) -> tuple[str, int, int]:
    """(reduced formula, space-group number, primitive atoms): what "the same structure" means here."""
    return host.formula, host.spacegroup_number, host.n_atoms


def generate_candidates(
    *,
    seed: int = 0,
    prototypes: Iterable[str] | None = None,
    max_per_prototype: int | None = 250,
    exclude: Iterable[tuple[str, int]] = (),
    include_curated_keys: bool = True,
) -> list[Host]:
    """Decorated prototype candidates, ranked and interleaved across prototypes.

    Parameters
    ----------
    seed : int
        Breaks ties between equal scores (the list is otherwise fully determined by the rules).
    prototypes : iterable of str, optional
        Registry keys to use (default: all of :data:`PROTOTYPES`, in registry order).
    max_per_prototype : int or None
        Keep at most this many best-scored candidates per prototype (keeps the list diverse).
    exclude : iterable of (reduced formula, space-group number, atoms in the primitive cell)
        Structures already covered elsewhere (see :func:`structure_key`).
    include_curated_keys : bool
        Also exclude everything the curated hosts cover.

    Returns
    -------
    list of Host
        Unrelaxed candidates (``source="prototype"``), unique by :func:`structure_key` and name.
    """
    rng = np.random.default_rng(seed)
    keys = list(prototypes) if prototypes is not None else list(PROTOTYPES)
    for k in keys:
        if k not in PROTOTYPES:
            raise DefectnetError(f"unknown prototype {k!r}; expected one of {', '.join(PROTOTYPES)}")
    seen = set(exclude)
    if include_curated_keys:
        seen |= {structure_key(h) for h in curated_hosts()}
    ranked: dict[str, list[Decoration]] = {}
    for k in keys:
        decs = decorate(k)
        tie = rng.permutation(len(decs))
        order = sorted(range(len(decs)), key=lambda i: (-decs[i].score, decs[i].elements, tie[i]))
        ranked[k] = [decs[i] for i in order]
    out: list[Host] = []
    names: set[str] = set()
    taken: Counter = Counter()
    cursors = {k: 0 for k in keys}
    active = list(keys)
    while active:  # round-robin: the best remaining candidate of each prototype per round
        for k in list(active):
            host = None
            while host is None and cursors[k] < len(ranked[k]):
                h = decoration_host(ranked[k][cursors[k]])
                cursors[k] += 1
                if h is not None and structure_key(h) not in seen and h.name not in names:
                    host = h
            if host is None:
                active.remove(k)
                continue
            seen.add(structure_key(host))
            names.add(host.name)
            out.append(host)
            taken[k] += 1
            if max_per_prototype is not None and taken[k] >= max_per_prototype:
                active.remove(k)
    return out


# ===================================================================== curated hosts
R_SEMI = "Madelung, Semiconductors: Data Handbook, 3rd ed. (Springer, 2004), room temperature"
R_WYCKOFF = "Wyckoff, Crystal Structures, 2nd ed. (Interscience, 1963), room temperature"
R_CRC = "CRC Handbook of Chemistry and Physics, 'Crystal structures and lattice parameters', room temperature"


def _cub(a):
    return [a, a, a, 90, 90, 90]


def _hex(a, c):
    return [a, a, c, 90, 90, 120]


def _tet(a, c):
    return [a, a, c, 90, 90, 90]


# builders: (element list, Wyckoff basis, space group, cellpar[, setting]); prototype key
def diamond(el, a):
    return [el], [(0, 0, 0)], 227, _cub(a)


def zincblende(a_el, b_el, a):
    return [a_el, b_el], [(0, 0, 0), (0.25, 0.25, 0.25)], 216, _cub(a)


def wurtzite(a_el, b_el, a, c, u):
    return [a_el, b_el], [(1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, u)], 186, _hex(a, c)


def rocksalt(a_el, b_el, a):
    return [a_el, b_el], [(0, 0, 0), (0.5, 0.5, 0.5)], 225, _cub(a)


def cscl(a_el, b_el, a):
    return [a_el, b_el], [(0, 0, 0), (0.5, 0.5, 0.5)], 221, _cub(a)


def fluorite(cat, an, a):
    return [cat, an], [(0, 0, 0), (0.25, 0.25, 0.25)], 225, _cub(a)


def antifluorite(cat, an, a):
    return [an, cat], [(0, 0, 0), (0.25, 0.25, 0.25)], 225, _cub(a)


def rutile(cat, an, a, c, u):
    return [cat, an], [(0, 0, 0), (u, u, 0)], 136, _tet(a, c)


def perovskite(a_el, b_el, x_el, a):
    return [b_el, a_el, x_el], [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0, 0)], 221, _cub(a)


def chalcopyrite(i_el, iii_el, vi_el, a, c, x):
    return [i_el, iii_el, vi_el], [(0, 0, 0), (0, 0, 0.5), (x, 0.25, 0.125)], 122, _tet(a, c)


def kesterite(i_el, ii_el, iv_el, vi_el, a, c, s=(0.756, 0.7566, 0.8722)):
    return (
        [i_el, i_el, ii_el, iv_el, vi_el],
        [(0, 0, 0), (0, 0.5, 0.25), (0, 0.5, 0.75), (0, 0, 0.5), s],
        82,
        _tet(a, c),
    )


def tetradymite(v_el, vi_el, a, c, z_v, z_vi):
    # Te(1) 3a, Bi 6c (0,0,z_v), Te(2) 6c (0,0,z_vi), hexagonal axes
    return [vi_el, v_el, vi_el], [(0, 0, 0), (0, 0, z_v), (0, 0, z_vi)], 166, _hex(a, c)


def tmd_2h(m_el, x_el, a, c, z):
    return [m_el, x_el], [(1 / 3, 2 / 3, 0.25), (1 / 3, 2 / 3, z)], 194, _hex(a, c)


def spinel(a_el, b_el, x_el, a, u):
    return [a_el, b_el, x_el], [(0.125, 0.125, 0.125), (0.5, 0.5, 0.5), (u, u, u)], 227, _cub(a), 2


@dataclass(frozen=True)
class CuratedSpec:
    name: str
    prototype: str
    family: str
    structure: tuple  # builder output, or ("aflow", label, tag, {slot: element}, cellpar)
    reference: str
    aliases: tuple[str, ...] = ()
    oxidation_states: dict | None = field(default=None)


def _cs(name, prototype, family, structure, reference, aliases=(), ox="guess"):
    return CuratedSpec(name, prototype, family, tuple(structure), reference, tuple(aliases), ox)


def _aflow_spec(label, tag, mapping, cellpar):
    return ("aflow", label, tag, mapping, cellpar)


#: name, prototype, family, structure, reference. Order: the issue's list, then extras.
CURATED: tuple[CuratedSpec, ...] = (
    # group IV
    _cs("Si", "diamond", "group-IV", diamond("Si", 5.4310), R_SEMI),
    _cs("Ge", "diamond", "group-IV", diamond("Ge", 5.6579), R_SEMI),
    _cs("C", "diamond", "group-IV", diamond("C", 3.5670), R_SEMI, ("diamond",)),
    _cs("SiC", "zincblende", "group-IV", zincblende("Si", "C", 4.3596), R_SEMI + " (3C/β-SiC)", ("SiC-3C",)),
    _cs(
        "SiC-4H",
        "moissanite-4H",
        "group-IV",
        _aflow_spec("AB_hP8_186_ab_ab", None, {"Si": "Si", "C": "C"}, _hex(3.0730, 10.053)),
        R_SEMI,
    ),
    _cs(
        "SiC-6H",
        "moissanite-6H",
        "group-IV",
        _aflow_spec("AB_hP12_186_a2b_a2b", None, {"Si": "Si", "C": "C"}, _hex(3.0806, 15.1173)),
        R_SEMI,
    ),
    # III-V
    _cs("GaAs", "zincblende", "III-V", zincblende("Ga", "As", 5.6533), R_SEMI),
    _cs("AlAs", "zincblende", "III-V", zincblende("Al", "As", 5.6611), R_SEMI),
    _cs("GaP", "zincblende", "III-V", zincblende("Ga", "P", 5.4505), R_SEMI),
    _cs("AlP", "zincblende", "III-V", zincblende("Al", "P", 5.4635), R_SEMI),
    _cs("InP", "zincblende", "III-V", zincblende("In", "P", 5.8687), R_SEMI),
    _cs("InAs", "zincblende", "III-V", zincblende("In", "As", 6.0583), R_SEMI),
    _cs("GaSb", "zincblende", "III-V", zincblende("Ga", "Sb", 6.0959), R_SEMI),
    _cs("AlSb", "zincblende", "III-V", zincblende("Al", "Sb", 6.1355), R_SEMI),
    _cs("InSb", "zincblende", "III-V", zincblende("In", "Sb", 6.4794), R_SEMI),
    _cs("BP", "zincblende", "III-V", zincblende("B", "P", 4.5383), R_SEMI),
    _cs("BN", "zincblende", "III-V", zincblende("B", "N", 3.6157), R_SEMI + " (cubic BN)", ("cBN", "BN-cubic")),
    _cs("GaN", "wurtzite", "III-V", wurtzite("Ga", "N", 3.1890, 5.1855, 0.377), R_SEMI),
    _cs("AlN", "wurtzite", "III-V", wurtzite("Al", "N", 3.1120, 4.9820, 0.382), R_SEMI),
    _cs("InN", "wurtzite", "III-V", wurtzite("In", "N", 3.5377, 5.7037, 0.379), R_SEMI),
    _cs(
        "BN-hexagonal",
        "hBN",
        "III-V",
        (["B", "N"], [(1 / 3, 2 / 3, 0.25), (1 / 3, 2 / 3, 0.75)], 194, _hex(2.5040, 6.6612)),
        R_SEMI,
        ("hBN",),
    ),
    # II-VI
    _cs("ZnO", "wurtzite", "II-VI", wurtzite("Zn", "O", 3.2496, 5.2065, 0.3819), R_SEMI),
    _cs("BeO", "wurtzite", "II-VI", wurtzite("Be", "O", 2.6979, 4.3772, 0.378), R_WYCKOFF),
    _cs("ZnS", "zincblende", "II-VI", zincblende("Zn", "S", 5.4093), R_SEMI),
    _cs("ZnSe", "zincblende", "II-VI", zincblende("Zn", "Se", 5.6676), R_SEMI),
    _cs("ZnTe", "zincblende", "II-VI", zincblende("Zn", "Te", 6.1037), R_SEMI),
    _cs("CdTe", "zincblende", "II-VI", zincblende("Cd", "Te", 6.4810), R_SEMI),
    _cs("HgTe", "zincblende", "II-VI", zincblende("Hg", "Te", 6.4615), R_SEMI),
    _cs("CdSe", "wurtzite", "II-VI", wurtzite("Cd", "Se", 4.2999, 7.0109, 0.376), R_SEMI),
    _cs("CdS", "wurtzite", "II-VI", wurtzite("Cd", "S", 4.1367, 6.7161, 0.377), R_SEMI),
    # I-VII and other tetrahedral
    _cs("CuI", "zincblende", "I-VII", zincblende("Cu", "I", 6.0507), R_SEMI + " (γ-CuI)"),
    # rock-salt and CsCl oxides and halides
    _cs("MgO", "rocksalt", "oxide", rocksalt("Mg", "O", 4.2112), R_WYCKOFF),
    _cs("CaO", "rocksalt", "oxide", rocksalt("Ca", "O", 4.8105), R_WYCKOFF),
    _cs("SrO", "rocksalt", "oxide", rocksalt("Sr", "O", 5.1600), R_WYCKOFF),
    _cs("BaO", "rocksalt", "oxide", rocksalt("Ba", "O", 5.5230), R_WYCKOFF),
    _cs("NiO", "rocksalt", "oxide", rocksalt("Ni", "O", 4.1771), R_WYCKOFF),
    _cs("NaCl", "rocksalt", "halide", rocksalt("Na", "Cl", 5.6402), R_CRC),
    _cs("KCl", "rocksalt", "halide", rocksalt("K", "Cl", 6.2931), R_CRC),
    _cs("KBr", "rocksalt", "halide", rocksalt("K", "Br", 6.6000), R_CRC),
    _cs("NaI", "rocksalt", "halide", rocksalt("Na", "I", 6.4728), R_CRC),
    _cs("LiF", "rocksalt", "halide", rocksalt("Li", "F", 4.0263), R_CRC),
    _cs("NaF", "rocksalt", "halide", rocksalt("Na", "F", 4.6340), R_CRC),
    _cs("AgCl", "rocksalt", "halide", rocksalt("Ag", "Cl", 5.5491), R_CRC),
    _cs("AgBr", "rocksalt", "halide", rocksalt("Ag", "Br", 5.7745), R_CRC),
    _cs("CsI", "CsCl", "halide", cscl("Cs", "I", 4.5667), R_CRC),
    _cs("CsCl", "CsCl", "halide", cscl("Cs", "Cl", 4.1230), R_CRC),
    _cs("TlBr", "CsCl", "halide", cscl("Tl", "Br", 3.9850), R_CRC),
    # IV-VI and thermoelectrics
    _cs("PbTe", "rocksalt", "IV-VI", rocksalt("Pb", "Te", 6.4620), R_SEMI),
    _cs("PbSe", "rocksalt", "IV-VI", rocksalt("Pb", "Se", 6.1240), R_SEMI),
    _cs("PbS", "rocksalt", "IV-VI", rocksalt("Pb", "S", 5.9360), R_SEMI),
    _cs("SnTe", "rocksalt", "IV-VI", rocksalt("Sn", "Te", 6.3270), R_SEMI),
    _cs(
        "SnSe",
        "GeS",
        "IV-VI",
        (["Sn", "Se"], [(0.1185, 0.25, 0.1031), (0.8550, 0.25, 0.4813)], 62, [11.501, 4.153, 4.445, 90, 90, 90]),
        "Chattopadhyay et al., J. Phys. Chem. Solids 47, 879 (1986), Pnma",
    ),
    _cs(
        "Bi2Te3",
        "tetradymite",
        "V2-VI3",
        tetradymite("Bi", "Te", 4.3860, 30.497, 0.4001, 0.7907),
        "Nakajima, J. Phys. Chem. Solids 24, 479 (1963)",
    ),
    _cs("Bi2Se3", "tetradymite", "V2-VI3", tetradymite("Bi", "Se", 4.1430, 28.636, 0.4008, 0.7883), R_WYCKOFF),
    _cs("Sb2Te3", "tetradymite", "V2-VI3", tetradymite("Sb", "Te", 4.2640, 30.458, 0.3988, 0.7872), R_WYCKOFF),
    _cs("Mg2Si", "antifluorite", "thermoelectric", antifluorite("Mg", "Si", 6.3510), R_SEMI),
    _cs("Mg2Sn", "antifluorite", "thermoelectric", antifluorite("Mg", "Sn", 6.7650), R_SEMI, ox={"Mg": 2, "Sn": -4}),
    _cs(
        "CoSb3",
        "skutterudite",
        "thermoelectric",
        _aflow_spec("A3B_cI32_204_g_c", None, {"Co": "Co", "As": "Sb"}, _cub(9.0385)),
        "a from Wyckoff (1963); internal coordinates of the CoAs3 prototype (AFLOW)",
    ),
    _cs(
        "ZrNiSn",
        "half-Heusler-18e",
        "thermoelectric",
        (["Zr", "Sn", "Ni"], [(0, 0, 0), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)], 216, _cub(6.1130)),
        "Aliev et al., Z. Phys. B 75, 167 (1989)",
        ox=None,
    ),
    # fluorite family
    _cs("CaF2", "fluorite", "halide", fluorite("Ca", "F", 5.4626), R_CRC),
    _cs("SrF2", "fluorite", "halide", fluorite("Sr", "F", 5.7996), R_CRC),
    _cs("BaF2", "fluorite", "halide", fluorite("Ba", "F", 6.2001), R_CRC),
    _cs("CeO2", "fluorite", "oxide", fluorite("Ce", "O", 5.4110), R_WYCKOFF),
    _cs(
        "ZrO2",
        "fluorite",
        "oxide",
        fluorite("Zr", "O", 5.0900),
        "cubic ZrO2 (high-temperature/stabilised), " + R_WYCKOFF,
        ("ZrO2-cubic",),
    ),
    _cs("Li2O", "antifluorite", "oxide", antifluorite("Li", "O", 4.6114), R_WYCKOFF),
    # rutile, anatase, corundum, quartz, cuprite, Ga2O3
    _cs("TiO2", "rutile", "oxide", rutile("Ti", "O", 4.5937, 2.9587, 0.3048), R_WYCKOFF, ("TiO2-rutile", "rutile")),
    _cs(
        "TiO2-anatase",
        "anatase",
        "oxide",
        (["Ti", "O"], [(0, 0, 0), (0, 0, 0.2081)], 141, _tet(3.7845, 9.5143)),
        R_WYCKOFF,
        ("anatase",),
    ),
    _cs("SnO2", "rutile", "oxide", rutile("Sn", "O", 4.7374, 3.1864, 0.3056), R_WYCKOFF),
    _cs("MgF2", "rutile", "halide", rutile("Mg", "F", 4.6213, 3.0519, 0.3030), R_WYCKOFF),
    _cs(
        "Al2O3",
        "corundum",
        "oxide",
        (["Al", "O"], [(0, 0, 0.3523), (0.3064, 0, 0.25)], 167, _hex(4.7589, 12.991)),
        R_WYCKOFF + " (sapphire)",
        ("sapphire",),
    ),
    _cs(
        "SiO2",
        "quartz",
        "oxide",
        _aflow_spec("A2B_hP9_152_c_a", None, {"Si": "Si", "O": "O"}, _hex(4.9134, 5.4052)),
        "α-quartz, " + R_WYCKOFF,
        ("quartz",),
    ),
    _cs("Cu2O", "cuprite", "oxide", (["O", "Cu"], [(0, 0, 0), (0.25, 0.25, 0.25)], 224, _cub(4.2696)), R_WYCKOFF),
    _cs(
        "Ga2O3",
        "beta-Ga2O3",
        "oxide",
        (
            ["Ga", "Ga", "O", "O", "O"],
            [(0.0904, 0, 0.7948), (0.3414, 0, 0.6857), (0.1674, 0, 0.1011), (0.4957, 0, 0.2553), (0.8279, 0, 0.4365)],
            12,
            [12.214, 3.0371, 5.7981, 90, 103.83, 90],
        ),
        "β-Ga2O3, Åhman, Svensson & Albertsson, Acta Cryst. C 52, 1336 (1996)",
        ("beta-Ga2O3",),
    ),
    # perovskites and other ternary oxides
    _cs("SrTiO3", "perovskite", "perovskite", perovskite("Sr", "Ti", "O", 3.9050), R_WYCKOFF),
    _cs(
        "BaTiO3",
        "perovskite",
        "perovskite",
        perovskite("Ba", "Ti", "O", 4.0000),
        "cubic phase above 393 K, " + R_WYCKOFF,
        ("BaTiO3-cubic",),
    ),
    _cs("KTaO3", "perovskite", "perovskite", perovskite("K", "Ta", "O", 3.9885), R_WYCKOFF),
    _cs("BaSnO3", "perovskite", "perovskite", perovskite("Ba", "Sn", "O", 4.1163), R_WYCKOFF),
    _cs("BaZrO3", "perovskite", "perovskite", perovskite("Ba", "Zr", "O", 4.1930), R_WYCKOFF),
    _cs("KMgF3", "perovskite", "perovskite", perovskite("K", "Mg", "F", 3.9889), R_WYCKOFF),
    _cs(
        "CsPbBr3",
        "perovskite",
        "perovskite",
        perovskite("Cs", "Pb", "Br", 5.8740),
        "cubic phase above 403 K, Stoumpos et al., Cryst. Growth Des. 13, 2722 (2013)",
        ("CsPbBr3-cubic",),
    ),
    _cs(
        "Cs2AgBiBr6",
        "double-perovskite",
        "double perovskite",
        (
            ["Cs", "Ag", "Bi", "Br"],
            [(0.25, 0.25, 0.25), (0, 0, 0), (0.5, 0.5, 0.5), (0.2486, 0, 0)],
            225,
            _cub(11.2499),
        ),
        "McClure et al., Chem. Mater. 28, 1348 (2016)",
    ),
    _cs("MgAl2O4", "spinel", "spinel", spinel("Mg", "Al", "O", 8.0832, 0.2624), R_WYCKOFF),
    _cs(
        "LiNbO3",
        "LiNbO3",
        "oxide",
        (["Nb", "Li", "O"], [(0, 0, 0), (0, 0, 0.2829), (0.0492, 0.3446, 0.0647)], 161, _hex(5.1483, 13.8631)),
        "Abrahams, Reddy & Bernstein, J. Phys. Chem. Solids 27, 997 (1966)",
    ),
    _cs(
        "CuAlO2",
        "delafossite",
        "delafossite",
        (["Cu", "Al", "O"], [(0, 0, 0), (0, 0, 0.5), (0, 0, 0.1099)], 166, _hex(2.8571, 16.94)),
        "Ishiguro et al., J. Solid State Chem. 40, 170 (1981)",
    ),
    # chalcopyrites and kesterites
    _cs("CuInSe2", "chalcopyrite", "chalcopyrite", chalcopyrite("Cu", "In", "Se", 5.7820, 11.619, 0.2240), R_SEMI),
    _cs("CuGaSe2", "chalcopyrite", "chalcopyrite", chalcopyrite("Cu", "Ga", "Se", 5.6140, 11.030, 0.2500), R_SEMI),
    _cs("CuInS2", "chalcopyrite", "chalcopyrite", chalcopyrite("Cu", "In", "S", 5.5230, 11.120, 0.2140), R_SEMI),
    _cs("CuGaS2", "chalcopyrite", "chalcopyrite", chalcopyrite("Cu", "Ga", "S", 5.3560, 10.480, 0.2540), R_SEMI),
    _cs("AgGaS2", "chalcopyrite", "chalcopyrite", chalcopyrite("Ag", "Ga", "S", 5.7570, 10.304, 0.2908), R_SEMI),
    _cs("ZnGeP2", "chalcopyrite", "chalcopyrite", chalcopyrite("Zn", "Ge", "P", 5.4650, 10.708, 0.2582), R_SEMI),
    _cs(
        "Cu2ZnSnS4",
        "kesterite",
        "kesterite",
        kesterite("Cu", "Zn", "Sn", "S", 5.4270, 10.848),
        "Schorr, Hoebler & Tovar, Eur. J. Mineral. 19, 65 (2007)",
        ("CZTS",),
    ),
    _cs(
        "Cu2ZnSnSe4",
        "kesterite",
        "kesterite",
        kesterite("Cu", "Zn", "Sn", "Se", 5.6930, 11.333),
        R_SEMI + " (kesterite ordering assumed)",
        ("CZTSe",),
    ),
    # layered and others
    _cs(
        "MoS2",
        "MoS2-2H",
        "transition-metal dichalcogenide",
        tmd_2h("Mo", "S", 3.1604, 12.295, 0.6210),
        R_WYCKOFF,
        ("MoS2-2H",),
    ),
    _cs(
        "WS2",
        "MoS2-2H",
        "transition-metal dichalcogenide",
        tmd_2h("W", "S", 3.1532, 12.323, 0.6220),
        R_WYCKOFF,
        ("WS2-2H",),
    ),
    _cs(
        "MoSe2",
        "MoS2-2H",
        "transition-metal dichalcogenide",
        tmd_2h("Mo", "Se", 3.2880, 12.927, 0.6210),
        R_WYCKOFF,
        ("MoSe2-2H",),
    ),
    _cs(
        "MgB2",
        "AlB2",
        "metal (diboride)",
        (["Mg", "B"], [(0, 0, 0), (1 / 3, 2 / 3, 0.5)], 191, _hex(3.0864, 3.5215)),
        "Nagamatsu et al., Nature 410, 63 (2001); a metal",
        ox=None,
    ),
)


def _build_curated(spec: CuratedSpec) -> Host:
    s = spec.structure
    if s[0] == "aflow":
        _, label, tag, mapping, cellpar = s
        t = _aflow(label, tag)
        atoms = _scaled_to(t.atoms(mapping), cellpar)
    else:
        symbols, basis, sg, cellpar, *setting = s
        labels = [f"{el}{i}" for i, el in enumerate(symbols)]
        t = _crystal(labels, basis, sg, cellpar, setting[0] if setting else 1)
        atoms = t.atoms({lab: el for lab, el in zip(labels, symbols)})
    ox = spec.oxidation_states
    return Host.from_atoms(
        atoms,
        name=spec.name,
        source="curated",
        prototype=spec.prototype,
        family=spec.family,
        reference=spec.reference,
        oxidation_states=ox,
        aliases=spec.aliases,
        provenance={"status": "experimental structure, not relaxed"},
    )


def _scaled_to(atoms, cellpar):
    """Give ``atoms`` the conventional lattice parameters ``cellpar`` (fractional coordinates kept)."""
    import spglib
    from ase import Atoms
    from ase.geometry import cellpar_to_cell

    data = (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)
    lat, pos, nums = spglib.standardize_cell(data, to_primitive=False, symprec=1e-4)
    conv = Atoms(numbers=nums, cell=cellpar_to_cell(cellpar), scaled_positions=pos, pbc=True)
    prim = spglib.standardize_cell(
        (conv.cell.array, conv.get_scaled_positions(), conv.numbers), to_primitive=True, symprec=1e-4
    )
    return Atoms(numbers=prim[2], cell=prim[0], scaled_positions=prim[1], pbc=True)


@lru_cache(maxsize=1)
def _curated_cache() -> tuple[Host, ...]:
    hosts = tuple(_build_curated(s) for s in CURATED)
    names = [n.lower() for h in hosts for n in h.all_names]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"curated host names clash: {sorted(dupes)}")
    return hosts


def curated_hosts() -> list[Host]:
    """The curated hosts (experimental structures, unrelaxed), in :data:`CURATED` order.

    Every curated host also answers to ``<formula>-<prototype>`` (``GaN-wurtzite``).
    """
    out = []
    for h in _curated_cache():
        auto = f"{h.formula}-{h.prototype}"
        redundant = h.prototype.startswith(h.formula) or auto.lower() in (n.lower() for n in h.all_names)
        aliases = h.aliases if redundant else (*h.aliases, auto)
        out.append(Host.from_dict({**h.to_dict(), "aliases": list(aliases)}))
    return out


def all_candidates(*, seed: int = 0, max_per_prototype: int | None = 250) -> list[Host]:
    """Curated hosts first, then the decorated prototype candidates (the build's work list)."""
    return curated_hosts() + generate_candidates(seed=seed, max_per_prototype=max_per_prototype)
