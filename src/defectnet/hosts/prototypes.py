"""Crystal prototypes: slot-labelled template cells and the registry of decoratable structure types.

:class:`Template` is a primitive cell whose sites carry slot labels; templates come from
pymatgen's copy of the AFLOW prototype encyclopedia (:func:`aflow_template`) or from Wyckoff
positions (:func:`crystal_template`). :class:`Prototype` is a structure type with its
oxidation-state patterns (one :class:`SiteSpec` per slot) and known members;
:data:`PROTOTYPES` is the registry, in the interleaving order of the candidate list.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Callable

import numpy as np

from defectnet.errors import DefectnetError

AFLOW_REFERENCE = "AFLOW prototype encyclopedia (Mehl et al., Comput. Mater. Sci. 136, S1, 2017) via pymatgen"


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


def crystal_template(labels: list[str], basis: list, spacegroup: int, cellpar, setting: int = 1) -> Template:
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


def aflow_template(label: str, tag: str | None = None) -> Template:
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


def parse_pattern(text: str) -> tuple[SiteSpec, ...]:
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
    return lambda: aflow_template(label, tag), f"aflow:{label}" + (f" ({tag})" if tag else "")


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
       lambda: crystal_template(["Ti", "O"], [(0, 0, 0), (0, 0, 0.2081)], 141, [3.7845, 3.7845, 9.5143, 90, 90, 90]),
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
       lambda: crystal_template(["Cu", "Al", "O"], [(0, 0, 0), (0, 0, 0.5), (0, 0, 0.1099)], 166,
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
       lambda: crystal_template(["A", "B", "B'", "X"], [(0.25, 0.25, 0.25), (0, 0, 0), (0.5, 0.5, 0.5), (0.25, 0, 0)],
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
       lambda: crystal_template(["La", "O", "Cu", "S"], [(0.25, 0.25, 0.1486), (0.75, 0.25, 0), (0.75, 0.25, 0.5),
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
       lambda: crystal_template(["I1", "I2", "II", "IV", "VI"],
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
