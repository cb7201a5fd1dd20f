"""Curated hosts: experimental structures of the systems users ask about.

:data:`CURATED` lists one :class:`CuratedSpec` per host (Si, GaAs, GaN, ZnO, CdTe, SrTiO3,
CuInSe2, Cu2ZnSnS4, MgB2, ...): a Wyckoff-position builder (:func:`zincblende`,
:func:`wurtzite`, :func:`rocksalt`, :func:`spinel`, ...) or an AFLOW prototype entry with
experimental room-temperature lattice constants and the reference they come from.
:func:`curated_hosts` builds them as unrelaxed :class:`~defectnet.hosts.library.Host` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from defectnet.hosts.library import Host
from defectnet.hosts.prototypes import aflow_template, crystal_template

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
        t = aflow_template(label, tag)
        atoms = _scaled_to(t.atoms(mapping), cellpar)
    else:
        symbols, basis, sg, cellpar, *setting = s
        labels = [f"{el}{i}" for i, el in enumerate(symbols)]
        t = crystal_template(labels, basis, sg, cellpar, setting[0] if setting else 1)
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
