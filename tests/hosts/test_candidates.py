"""Prototype decoration: chemistry rules, determinism, geometry, and the curated structures."""

from collections import Counter

import numpy as np
import pytest

from defectnet.errors import DefectnetError
from defectnet.hosts import candidates as C
from defectnet.hosts import chemistry as chem
from defectnet.hosts import curated as cur
from defectnet.hosts import prototypes as P

# small, fast subset with space groups no other prototype shares for these formulas
SUBSET = ["zincblende", "perovskite", "kesterite", "double-perovskite"]


@pytest.fixture(scope="module")
def subset():
    return C.generate_candidates(seed=0, prototypes=SUBSET)


def _decorations(key):
    return {(d.elements, d.charges): d for d in C.decorate(key)}


# ----------------------------------------------------------------------------- registry
def test_every_prototype_is_charge_balanced_and_small():
    for key, proto in P.PROTOTYPES.items():
        t = proto.template()
        assert len(t.slots) <= C.MAX_PRIMITIVE_ATOMS, key
        counts = Counter(t.slots)
        for pat in proto.patterns:
            specs = P.parse_pattern(pat)
            assert sum(sp.charge * counts[s] for sp, s in zip(specs, proto.slots)) == 0, (key, pat)


def test_template_coordination_numbers():
    cn = {k: C._geometry(k).cn for k in ("zincblende", "rocksalt", "fluorite", "rutile", "perovskite", "spinel")}
    assert cn["zincblende"] == {"Zn": 4, "S": 4}
    assert cn["rocksalt"] == {"Na": 6, "Cl": 6}
    assert cn["fluorite"] == {"Ca": 8, "F": 4}
    assert cn["rutile"]["Ti"] == 6 and cn["perovskite"]["Ca"] == 12 and cn["perovskite"]["Ti"] == 6
    assert cn["spinel"]["Mg"] == 4 and cn["spinel"]["Al"] == 6


# ----------------------------------------------------------------------------- chemistry rules
@pytest.mark.parametrize(
    "cat, qc, cn, an, qa, expected",
    [
        ("Ga", 3, 4, "As", -3, 2.448),  # GaAs, Madelung
        ("Cd", 2, 4, "Te", -2, 2.806),
        ("Na", 1, 6, "Cl", -1, 2.820),
        ("Mg", 2, 6, "O", -2, 2.106),
        ("Zn", 2, 4, "O", -2, 1.978),
    ],
)
def test_bond_length_prediction(cat, qc, cn, an, qa, expected):
    assert chem.bond_length(cat, qc, cn, an, qa, cn) == pytest.approx(expected, rel=0.05)


def test_cation_needs_a_tabulated_radius_for_its_coordination():
    assert chem.shannon_radius("Ga", 3, 4, exact=True) == pytest.approx(0.47)
    assert chem.shannon_radius("Ca", 2, 4, exact=True) is None  # Ca2+ is never tetrahedral
    zb = {d.elements[0] for d in C.decorate("zincblende")}
    assert {"Ga", "Zn", "Cd", "Al", "In", "Cu"} <= zb
    assert not zb & {"Ca", "Sr", "Ba", "Cs", "La"}


def test_size_mismatch_filters_perovskites():
    perov = {d.elements for d in C.decorate("perovskite")}
    assert ("Sr", "Ti", "O") in perov and ("K", "Ta", "O") in perov and ("K", "Mg", "F") in perov
    assert ("Mg", "Ti", "O") not in perov  # Goldschmidt t ≈ 0.8: Mg is far too small for the A site
    assert all(d.mismatch <= 1.08 for d in C.decorate("perovskite"))


def test_decorations_obey_the_rules():
    allowed = set(chem.host_elements())
    for key in P.PROTOTYPES:
        proto = P.PROTOTYPES[key]
        for d in C.decorate(key):
            assert set(d.elements) <= allowed
            assert not set(d.elements) & {"Tc", "Pm", "Xe"}
            cations = [e for e, q in zip(d.elements, d.charges) if q > 0]
            anions = [e for e, q in zip(d.elements, d.charges) if q < 0]
            assert max(chem.electronegativity(e) for e in cations) <= min(
                chem.electronegativity(e) for e in anions
            ) + 0.3
            shared = [s for g in proto.may_share for s in g]
            distinct = [e for e, s in zip(d.elements, proto.slots) if s not in shared]
            assert len(set(distinct)) == len(distinct), (key, d.elements)
            for el, q in zip(d.elements, d.charges):
                assert (el, q) not in chem.DIMER_STATES
                if (el, q) in chem.OXIDANT_STATES:
                    assert set(anions) <= {"O", "F"}


# ----------------------------------------------------------------------------- candidates
def test_candidates_are_deterministic(subset):
    again = C.generate_candidates(seed=0, prototypes=SUBSET)
    assert [h.to_dict() for h in again] == [h.to_dict() for h in subset]


def test_shipped_candidates_match_the_generator(subset):
    from defectnet.hosts.library import CANDIDATES_FILE, data_path, read_hosts

    shipped = {h.name: h for h in read_hosts(data_path(CANDIDATES_FILE))[0]}  # the file, promoted ones included
    for h in subset:
        assert h.name in shipped, h.name
        assert shipped[h.name] == h


def test_candidate_records(subset):
    assert len({h.name for h in subset}) == len(subset)
    assert len({C.structure_key(h) for h in subset}) == len(subset)
    by_proto = Counter(h.prototype for h in subset)
    assert set(by_proto) == set(SUBSET) and max(by_proto.values()) <= 250
    for h in subset:
        assert h.source == "prototype" and h.name == f"{h.formula}-{h.prototype}"
        assert h.provenance["checks"] == {"charge_balanced": True, "min_distance_ok": True}
        assert not h.relaxed
        assert C.min_distance_ok(h.to_atoms(), h.oxidation_states)
    assert {h.arity for h in subset} == {2, 3, 4, 5}  # kesterite gives the quinaries (I ≠ I')
    # curated structures are never repeated as candidates
    curated = {C.structure_key(h) for h in cur.curated_hosts()}
    assert not curated & {C.structure_key(h) for h in subset}


def test_swapped_sublattices_are_one_structure():
    from dataclasses import replace

    lib = cur.curated_hosts()
    gaas = next(h for h in lib if h.name == "GaAs")
    assert C.structure_key(replace(gaas, formula="AsGa")) == C.structure_key(gaas)
    assert C.structure_key(replace(gaas, formula="GaP")) != C.structure_key(gaas)


def test_ranking_is_round_robin_across_prototypes(subset):
    first = [h.prototype for h in subset[: len(SUBSET)]]
    assert first == SUBSET


def test_bridging_anions_sit_at_the_predicted_bond_lengths():
    dec = _decorations("double-perovskite")[(("Ba", "Mg", "W", "O"), (2, 2, 6, -2))]
    atoms = C.build_structure(dec)
    d = atoms.get_all_distances(mic=True)
    sym = np.array(atoms.get_chemical_symbols())
    mg_o = d[np.ix_(sym == "Mg", sym == "O")].min()
    w_o = d[np.ix_(sym == "W", sym == "O")].min()
    # each O splits the Mg···W line in the ratio of the predicted bonds (the lattice scale is a
    # compromise with the A–O bonds, so absolute lengths are off by that compromise only)
    assert mg_o / w_o == pytest.approx(dec.bonds[("B", "X")] / dec.bonds[("B'", "X")], rel=1e-3)
    assert (mg_o + w_o) == pytest.approx(dec.scale * 4.0, rel=1e-3)  # template B···B' = a/2 = 4 Å
    assert len(atoms) == 10


def test_scaling_brings_bonds_to_the_prediction():
    dec = _decorations("rocksalt")[(("Mg", "O"), (2, -2))]
    atoms = C.build_structure(dec)
    assert atoms.get_distance(0, 1, mic=True) == pytest.approx(dec.bonds[("Na", "Cl")], rel=1e-6)


def test_unknown_prototype_is_an_error():
    with pytest.raises(DefectnetError, match="unknown prototype"):
        C.generate_candidates(prototypes=["zincblend"])


# ----------------------------------------------------------------------------- curated
def test_curated_hosts_are_well_formed():
    hosts = cur.curated_hosts()
    assert len(hosts) >= 60
    for h in hosts:
        assert h.source == "curated" and h.reference and not h.relaxed
        assert h.n_atoms <= 20
        assert C.min_distance_ok(h.to_atoms())
        assert f"{h.formula}-{h.prototype}".lower() in {n.lower() for n in h.all_names} or h.prototype.startswith(
            h.formula
        )


@pytest.mark.parametrize(
    "name, pair, expected",
    [
        ("GaAs", ("Ga", "As"), 2.448),  # a√3/4
        ("GaN", ("Ga", "N"), 1.945),
        ("TiO2", ("Ti", "O"), 1.946),
        ("Al2O3", ("Al", "O"), 1.852),
        ("Cu2ZnSnS4", ("Sn", "S"), 2.41),
        ("LiNbO3", ("Nb", "O"), 1.889),
        ("Ga2O3", ("Ga", "O"), 1.83),
        ("SnSe", ("Sn", "Se"), 2.74),
    ],
)
def test_curated_shortest_bonds(name, pair, expected):
    h = {x.name: x for x in cur.curated_hosts()}[name]
    atoms = h.to_atoms() * (2, 2, 2)
    sym = np.array(atoms.get_chemical_symbols())
    d = atoms.get_all_distances(mic=True)[np.ix_(sym == pair[0], sym == pair[1])]
    assert d.min() == pytest.approx(expected, abs=0.04)
