"""Planning and the co-doping sampler: determinism, pools (random, radius-limited, isovalent, explicit)."""

from dataclasses import replace

import pytest
from ase.build import bulk

from defectnet.data.config import GenerateConfig
from defectnet.data.plan import HostInput, plan_host
from defectnet.errors import DefectnetError



# ---------------------------------------------------------------------------- planning
def test_plans_are_deterministic_bounded_and_extendable(emt, recommender):
    cfg = emt.config(emt.inline(Au=bulk("Au", "fcc", a=4.08)))
    host = HostInput("Au", bulk("Au", "fcc", a=4.08), "Au")
    a = plan_host(host, cfg, recommender, range(6))
    b = plan_host(host, replace(cfg, samples_per_host=12), recommender, range(12))
    assert a.failure is None and len(a.pool) == 2
    assert [b.jobs[i] for i in range(6)] == [a.jobs[i] for i in range(6)]  # more samples keep the first ones
    for job in b.jobs.values():
        true = {el for el, _, _ in job.dopants}
        assert true <= set(a.pool)  # true dopants from the pool only
        assert not true & set(job.distractors)
        assert set(job.candidates) == true | set(job.distractors)
    assert len({j.seed for j in b.jobs.values()}) == 12
    other = plan_host(HostInput("Au2", host.atoms, "Au"), cfg, recommender, range(6))
    assert other.jobs[0].seed != a.jobs[0].seed  # seeds depend on the host name



def test_radius_limit_keeps_mismatched_dopants_out_of_the_pool_but_not_the_distractors(emt, recommender):
    from defectnet.hosts.chemistry import covalent_radius

    host = HostInput("Cu", bulk("Cu", "fcc", a=3.61), "Cu")
    sampler = {**emt.base["sampler"], "dopant_pool": 4, "n_distractors": [2, 3], "max_radius_mismatch": 0.07}
    plan = plan_host(host, emt.config(emt.inline(Cu=host.atoms), sampler=sampler), recommender, range(12))
    near = {el for el in emt.dopants if el != "Cu" and abs(covalent_radius(el) / covalent_radius("Cu") - 1) <= 0.07}
    assert near and set(plan.pool) <= near  # Ag (+10 %) and Al (-8 %) are never placed
    distractors = {el for job in plan.jobs.values() for el in job.distractors}
    assert distractors - near  # ...but may still be offered as distractors
    free = plan_host(host, emt.config(emt.inline(Cu=host.atoms), sampler={**sampler, "max_radius_mismatch": None}),
                     recommender, range(12))
    assert set(free.pool) - near  # without the limit they can be true dopants
    tight = plan_host(host, emt.config(emt.inline(Cu=host.atoms), sampler={**sampler, "max_radius_mismatch": 0.01}),
                      recommender, range(2))
    assert tight.failure[0] == "no_dopants" and "max_radius_mismatch" in tight.failure[1]
    with pytest.raises(DefectnetError, match="max_radius_mismatch"):
        emt.config(["Si"], sampler={"max_radius_mismatch": -0.1})


@pytest.fixture(scope="module")
def chem_recommender():
    from defectnet.recommend import DopantRecommender

    vocab = ["Li", "Be", "C", "O", "Mg", "Al", "Si", "S", "K", "Ca", "Zn", "Ge", "Se", "Br", "In"]
    return DopantRecommender(vocabulary=vocab, n_max=20).fit()


def test_ionic_sites_keep_their_valence_covalent_ones_need_not(emt, chem_recommender):
    from defectnet.recommend import keeps_valence
    from defectnet.sites import ionic_sites

    nacl = bulk("NaCl", "rocksalt", a=5.64)
    assert ionic_sites(nacl) == {"Na": 1, "Cl": -1}
    assert ionic_sites(bulk("GaAs", "zincblende", a=5.65)) == {}  # Pauling ionic character 0.03
    sampler = {**emt.base["sampler"], "vocabulary": None, "dopant_pool": 8, "n_dopants": [1, 4]}
    free = plan_host(HostInput("NaCl", nacl, "NaCl"), emt.config(emt.inline(NaCl=nacl), sampler=sampler),
                     chem_recommender, range(40))
    kept = plan_host(HostInput("NaCl", nacl, "NaCl"),
                     emt.config(emt.inline(NaCl=nacl), sampler={**sampler, "isovalent_ionic": True}), chem_recommender, range(40))
    records = {(r.dopant, r.site): r for r in kept.records}
    valence = {"Na": 1, "Cl": -1}

    def aliovalent(plan):
        return {(el, site) for job in plan.jobs.values() for el, site, _ in job.dopants
                if not keeps_valence(records[el, site], valence[site])}

    assert aliovalent(free)  # Ca, Mg on Na are recommended and drawn...
    assert not aliovalent(kept) and kept.jobs  # ...but not with isovalent_ionic
    assert {el for job in kept.jobs.values() for el in job.distractors} & {"Ca", "Mg", "O", "S"}  # still distractors


def test_an_explicit_pool_names_the_true_dopants_and_their_sites(emt, chem_recommender):
    gaas = bulk("GaAs", "zincblende", a=5.65)
    pools = {"GaAs": ["Si@Ga", "Zn", "C@As", "Li@Ga"]}  # Li@Ga is not recommended: user's choice
    sampler = {**emt.base["sampler"], "vocabulary": None, "n_dopants": [1, 4], "pools": pools,
               "max_radius_mismatch": 0.05, "isovalent_ionic": True}
    cfg = emt.config(emt.inline(GaAs=gaas), sampler=sampler)
    plan = plan_host(HostInput("GaAs", gaas, "GaAs"), cfg, chem_recommender, range(30))
    placed = {(el, site) for job in plan.jobs.values() for el, site, _ in job.dopants}
    assert placed == {("Si", "Ga"), ("Zn", "Ga"), ("C", "As"), ("Li", "Ga")}  # the limits do not apply
    assert set(plan.pool) == {"Si", "Zn", "C", "Li"}
    assert GenerateConfig.from_dict(cfg.to_dict()) == cfg
    other = plan_host(HostInput("AlAs", gaas, "GaAs"), cfg, chem_recommender, range(4))
    assert len(other.pool) == emt.base["sampler"]["dopant_pool"]  # only GaAs is listed
    bad = plan_host(HostInput("GaAs", gaas, "GaAs"),
                    emt.config(emt.inline(GaAs=gaas), sampler={**sampler, "pools": {"GaAs": ["Si@In"]}}), chem_recommender, [0])
    assert bad.failure[0] == "no_dopants" and "no In site" in bad.failure[1]


def test_random_dopant_pool_is_seeded_and_not_the_ranking():
    from defectnet.data.config import SamplerSettings
    from defectnet.data.plan import choose_pool

    scores = {el: 1.0 - 0.01 * i for i, el in enumerate(["P", "As", "Ge", "Al", "Ga", "B", "Sb", "In", "C", "Sn"])}
    best = choose_pool(scores, SamplerSettings(dopant_pool=4, pool_choice="best"), 0)
    assert best == ("P", "As", "Ge", "Al")
    pools = [choose_pool(scores, SamplerSettings(dopant_pool=4), seed) for seed in range(30)]
    assert pools[3] == choose_pool(scores, SamplerSettings(dopant_pool=4), 3)  # seeded
    assert all(len(set(p)) == 4 and set(p) <= set(scores) for p in pools)
    chosen = {el for p in pools for el in p}
    assert chosen == set(scores)  # every recommended element can be a true dopant
    assert sum(set(p) == set(best) for p in pools) < 5
    with pytest.raises(DefectnetError, match="pool_choice"):
        SamplerSettings(pool_choice="top")


def test_generation_sites_are_where_the_planner_placed_each_dopant_not_auto_site(emt, chem_recommender):
    """Training files do not record sites: a basis of their data must replay the planner, not guess
    (auto_site put Ag on I in KI-wurtzite, where every sample had it on K)."""
    from defectnet.data.bases import generation_sites
    from defectnet.doping import auto_site

    gaas = bulk("GaAs", "zincblende", a=5.65)
    sampler = {**emt.base["sampler"], "vocabulary": None, "n_dopants": [1, 3],
               "pools": {"GaAs": ["Ge@Ga", "Se@As", "Zn"]}}
    cfg = emt.config(emt.inline(GaAs=gaas), sampler=sampler)
    host = HostInput("GaAs", gaas, "GaAs")
    sites = generation_sites(host, cfg, chem_recommender, ["Ge", "Se", "Zn"])
    placed = {(el, site) for job in plan_host(host, cfg, chem_recommender, range(cfg.samples_per_host)).jobs.values()
              for el, site, _ in job.dopants}
    assert {(el, s) for el, s in sites.items()} <= placed and sites["Ge"] == "Ga" and sites["Se"] == "As"
    assert auto_site("Ge", ["Ga", "As"]) == "As"  # what the bases of training files used to take
