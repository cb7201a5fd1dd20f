"""Tests of the dopant recommender.

Host structures use experimental lattice constants (Å): diamond Si 5.431; zincblende GaAs
5.653, 3C-SiC 4.36; wurtzite GaN 3.189/5.185, ZnO 3.25/5.207; chalcopyrite AgGaS2 (I-42d,
a = 5.757, c = 10.311, S x = 0.279); MgB2 (P6/mmm, a = 3.086, c = 3.524).
The known dopants asserted are the textbook ones (Sze & Ng, *Physics of Semiconductor
Devices*; for MgB2, Al on Mg and C on B are the studied substitutions).
"""

from __future__ import annotations

import time

import pytest
from ase import Atoms
from ase.build import bulk
from ase.spacegroup import crystal

from defectnet.elements import DOPANTS
from defectnet.errors import DefectnetError
from defectnet.recommend import SOURCES, DopantRecommender, DopantRecord, coverage


def _hosts() -> dict[str, Atoms]:
    return {
        "Si": bulk("Si", "diamond", a=5.431),
        "GaAs": bulk("GaAs", "zincblende", a=5.653),
        "GaN": bulk("GaN", "wurtzite", a=3.189, c=5.185),
        "ZnO": bulk("ZnO", "wurtzite", a=3.25, c=5.207),
        "SiC": bulk("SiC", "zincblende", a=4.36),
        "AgGaS2": crystal(["Ag", "Ga", "S"], basis=[(0, 0, 0), (0, 0, 0.5), (0.279, 0.25, 0.125)],
                          spacegroup=122, cellpar=[5.757, 5.757, 10.311, 90, 90, 90]),
        "MgB2": crystal(["Mg", "B"], basis=[(0, 0, 0), (1 / 3, 2 / 3, 0.5)], spacegroup=191,
                        cellpar=[3.086, 3.086, 3.524, 90, 90, 120]),
    }


@pytest.fixture(scope="module")
def hosts():
    return _hosts()


@pytest.fixture(scope="module")
def recommender():
    return DopantRecommender().fit()


def _top(recommender, atoms, n=10):
    return {(r.dopant, r.site) for r in recommender.recommend(atoms, n=n)}


def _top_dopants(recommender, atoms, n=10):
    return {r.dopant for r in recommender.recommend(atoms, n=n)}


@pytest.mark.parametrize("name", ["Si", "GaAs", "GaN", "ZnO", "AgGaS2", "MgB2"])
def test_at_least_five_candidates(recommender, hosts, name):
    records = recommender.recommend(hosts[name])
    assert len({r.dopant for r in records}) >= 5


def test_silicon_dopants(recommender, hosts):
    # B (p-type), P (n-type), Ge (isovalent) are the standard substitutional impurities.
    assert {"B", "P", "Ge"} <= _top_dopants(recommender, hosts["Si"])


def test_gaas_dopants(recommender, hosts):
    top = _top(recommender, hosts["GaAs"])
    # Zn and Be are acceptors on the Ga site; Si is the standard donor (amphoteric).
    assert {("Zn", "Ga"), ("Be", "Ga")} <= top
    assert "Si" in {d for d, _ in top}


def test_gan_dopants(recommender, hosts):
    # Mg on Ga: the p-type dopant; Si on Ga: the n-type dopant.
    assert {("Mg", "Ga"), ("Si", "Ga")} <= _top(recommender, hosts["GaN"])


def test_zno_dopants(recommender, hosts):
    # Al and Ga on Zn: the n-type dopants of transparent conducting ZnO.
    assert {("Al", "Zn"), ("Ga", "Zn")} <= _top(recommender, hosts["ZnO"])


def test_mgb2_gets_candidates_without_oxidation_states(recommender, hosts):
    # pymatgen finds no oxidation states for the intermetallic MgB2; the periodic rule
    # still proposes the two studied substitutions.
    top = _top(recommender, hosts["MgB2"])
    assert {("Al", "Mg"), ("C", "B")} <= top


def test_elemental_host_uses_the_periodic_rule(recommender, hosts):
    records = recommender.recommend(hosts["Si"], n=100)
    assert {r.source for r in records} == {"periodic"}
    assert all(r.oxidation_state is None for r in records)


def test_ionic_sources_alone_fail_where_the_fallback_is_needed(hosts):
    # Substitution model only: nothing for elemental Si (Si0 is not an ion), and for
    # GaAs only the Ga site (As3- is unknown to the model) — why "periodic" exists.
    sub = DopantRecommender(methods=("substitution",)).fit()
    assert sub.recommend(hosts["Si"]) == []
    assert {r.site for r in sub.recommend(hosts["GaAs"], n=100)} == {"Ga"}
    both = DopantRecommender().fit()
    assert {r.site for r in both.recommend(hosts["GaAs"], n=100)} == {"Ga", "As"}


def test_records_are_valid(recommender, hosts):
    for atoms in hosts.values():
        records = recommender.recommend(atoms, n=200)
        host_elements = set(atoms.get_chemical_symbols())
        pairs = [(r.dopant, r.site) for r in records]
        assert len(pairs) == len(set(pairs))  # deduplicated
        scores = [r.score for r in records]
        assert scores == sorted(scores, reverse=True)
        for r in records:
            assert r.dopant in DOPANTS
            assert r.dopant != r.site
            assert r.site in host_elements
            assert 0.0 <= r.score <= 1.0
            assert r.score >= recommender.threshold
            assert r.source in SOURCES


def test_antisites_are_allowed(recommender, hosts):
    # C on the Si site of SiC is a host element on the other site: allowed.
    assert ("C", "Si") in _top(recommender, hosts["SiC"], n=50)


def test_vocabulary_is_respected(hosts):
    rec = DopantRecommender(vocabulary=("B", "P", "Ge", "Zn")).fit()
    for atoms in hosts.values():
        assert {r.dopant for r in rec.recommend(atoms, n=100)} <= {"B", "P", "Ge", "Zn"}


def test_n_and_n_max(recommender, hosts):
    assert len(recommender.recommend(hosts["GaAs"])) == recommender.n_max == 10
    assert len(recommender.recommend(hosts["GaAs"], n=3)) == 3
    with pytest.raises(DefectnetError, match="positive integer"):
        recommender.recommend(hosts["GaAs"], n=0)


def test_pymatgen_structure_gives_the_same_answer(recommender, hosts):
    from pymatgen.io.ase import AseAtomsAdaptor

    structure = AseAtomsAdaptor.get_structure(hosts["GaN"])
    assert recommender.recommend(structure) == recommender.recommend(hosts["GaN"])


def test_fast_after_fit(recommender):
    atoms = bulk("GaAs", "zincblende", a=5.70)  # a new bond length: no cached proposal
    start = time.perf_counter()
    recommender.recommend(atoms)
    assert time.perf_counter() - start < 0.5


def test_unknown_element_raises(recommender):
    atoms = Atoms("X2", positions=[[0, 0, 0], [1.2, 1.2, 1.2]], cell=[4, 4, 4], pbc=True)
    with pytest.raises(DefectnetError, match="unknown element 'X'"):
        recommender.recommend(atoms)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("GaAs", "expected an ase.Atoms or pymatgen Structure"),
        (Atoms(), "no atoms"),
        (Atoms("Si2", positions=[[0, 0, 0], [1.3, 1.3, 1.3]]), "3-D periodic cell"),
    ],
)
def test_bad_structures_raise(recommender, bad, message):
    with pytest.raises(DefectnetError, match=message):
        recommender.recommend(bad)


def test_not_fitted_raises(hosts):
    with pytest.raises(DefectnetError, match="not fitted"):
        DopantRecommender().recommend(hosts["Si"])


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_max": 0}, "n_max"),
        ({"threshold": 1.0}, "threshold"),
        ({"vocabulary": ("Si", "Xe")}, "vocabulary"),
        ({"vocabulary": ()}, "empty"),
        ({"methods": ("periodic", "magic")}, "unknown recommender methods"),
    ],
)
def test_bad_parameters_raise_on_fit(params, message):
    with pytest.raises(DefectnetError, match=message):
        DopantRecommender(**params).fit()


def test_get_params_and_fit_returns_self():
    rec = DopantRecommender(n_max=5, methods=("periodic",))
    assert rec.fit() is rec
    params = rec.get_params()
    assert params["n_max"] == 5 and params["methods"] == ("periodic",)
    assert params["vocabulary"] == DOPANTS and params["threshold"] == 1e-3
    assert DopantRecommender(**params).get_params() == params


def test_record_round_trip(recommender, hosts):
    for r in recommender.recommend(hosts["ZnO"]):
        assert DopantRecord.from_dict(r.to_dict()) == r
    with pytest.raises(DefectnetError, match="unknown DopantRecord keys"):
        DopantRecord.from_dict({**r.to_dict(), "probability": 1.0})


def test_coverage(recommender, hosts):
    assert coverage(hosts, min_candidates=5, recommender=recommender) == 1.0
    # At most n_max = 10 records, so never 11 distinct dopants.
    assert coverage(list(hosts.values()), min_candidates=11, recommender=recommender) == 0.0
    with pytest.raises(DefectnetError, match="at least one structure"):
        coverage([], recommender=recommender)
