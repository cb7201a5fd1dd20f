"""The hosts of a generation run and the per-host plan drawn in the client.

:func:`resolve_hosts` turns a :class:`~defectnet.data.config.HostSelection` into
:class:`HostInput` objects; :func:`plan_host` recommends a host's dopants, chooses its
dopant pool and draws its :class:`SampleJob` objects, all from seeds derived from
(config seed, host name, sample index) by :func:`sample_seed`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from defectnet.data.config import GenerateConfig, HostSelection, SamplerSettings, dict_to_atoms
from defectnet.elements import atomic_fractions
from defectnet.errors import DefectnetError


@dataclass(frozen=True, eq=False)
class HostInput:
    """A host as given to the pipeline: its name, structure and what it is."""

    name: str
    atoms: Atoms
    formula: str
    prototype: str = "unknown"
    source: str = "user"

    @property
    def structure_hash(self) -> str:
        """Hash of the structure (species, cell and fractional positions rounded to 1e-6)."""
        a = self.atoms
        payload = json.dumps([a.get_chemical_symbols(), np.round(a.cell.array, 6).tolist(),
                              np.round(np.mod(a.get_scaled_positions(), 1.0), 6).tolist()])
        return hashlib.sha1(payload.encode()).hexdigest()[:16]

    @property
    def composition(self) -> dict[str, float]:
        return atomic_fractions(self.atoms.get_chemical_symbols())


def planner_recommender(sampler):
    """The fitted :class:`~defectnet.recommend.DopantRecommender` a generation with ``sampler`` (its
    :class:`~defectnet.data.config.SamplerConfig`) plans its hosts' dopant pools with."""
    from defectnet.recommend import DopantRecommender

    kw = {} if sampler.vocabulary is None else {"vocabulary": sampler.vocabulary}
    return DopantRecommender(n_max=sampler.n_recommend, **kw).fit()


def resolve_hosts(sel: HostSelection, host_settings=None, keep=()) -> list[HostInput]:
    """The hosts a selection names, in a stable order (library hosts via :mod:`defectnet.hosts`).

    With ``sel.order == "cheapest"`` they are sorted by the size of their force-constant
    cell under ``host_settings`` (:class:`~defectnet.phonons.host.HostSettings`, default
    settings if None), ties in the listed order. Hosts named in ``keep`` (those a resumed
    store already holds) are not removed by ``sel.exclude_from``: a chunk exported mid-run
    goes on with them, and raising ``samples_per_host`` adds samples to them from their
    stored patches (``--skip-in`` keeps the exported ones out of the next chunk).
    """
    out: dict[str, HostInput] = {}

    def add(h: HostInput):
        prev = out.get(h.name)
        if prev is not None and prev.structure_hash != h.structure_hash:
            raise DefectnetError(f"two different hosts are named {h.name!r}; rename one of the files")
        out.setdefault(h.name, h)

    def from_library(h) -> HostInput:
        return HostInput(h.name, h.to_atoms(), h.formula, h.prototype, h.source)

    if sel.names or sel.filter or sel.all or sel.files:
        from defectnet.hosts import list_hosts, load_host

        for name in sel.names:
            add(from_library(load_host(name)))
        if sel.filter or sel.all:
            for h in list_hosts(sel.filter or None):
                add(from_library(h))
        for path in sel.files:
            if not Path(path).is_file():
                raise DefectnetError("host file not found", source=str(path))
            add(from_library(load_host(path)))
    for name, d in sel.structures.items():
        atoms = dict_to_atoms(d)
        add(HostInput(name, atoms, atoms.get_chemical_formula(mode="metal"), "user", "inline"))
    in_files = {n.lower() for n in hosts_in_training_files(sel.exclude_from)}
    done = in_files - {n.lower() for n in keep}
    excluded = {n.lower() for n in sel.exclude} | done
    hosts = [h for h in out.values() if h.name.lower() not in excluded]
    if sel.order == "cheapest":
        from defectnet.phonons.host import HostSettings, fc_cell_atoms

        settings = host_settings or HostSettings()
        cost = {h.name: fc_cell_atoms(h.atoms, settings) for h in hosts}
        hosts.sort(key=lambda h: (cost[h.name], len(h.atoms)))
    if sel.per_family is not None:
        hosts = families_capped(hosts, sel.per_family, in_files, keep)
    if sel.max_hosts is not None:
        hosts = hosts[: sel.max_hosts]
    if not hosts:
        raise DefectnetError("the host selection is empty")
    return hosts


def families_capped(hosts: list[HostInput], per_family: int, held=(), keep=()) -> list[HostInput]:
    """``hosts`` without those past ``per_family`` of their library prototype, in order.

    The families of the host names in ``held`` (already in the data) count first; hosts named
    in ``keep`` (a resumed store's) are never dropped and count too. A host whose name the
    library lacks (a file or an inline structure) has no family and is kept.
    """
    from defectnet.hosts import list_hosts

    family = {h.name.lower(): h.prototype for h in list_hosts()}
    kept = {n.lower() for n in keep}
    count: dict[str, int] = {}
    for name in {n.lower() for n in held} | kept:
        if name in family:
            count[family[name]] = count.get(family[name], 0) + 1
    out = []
    for h in hosts:
        fam = family.get(h.name.lower())
        if fam is None or h.name.lower() in kept:
            out.append(h)
        elif count.get(fam, 0) < per_family:
            count[fam] = count.get(fam, 0) + 1
            out.append(h)
    return out


def hosts_in_training_files(paths) -> set[str]:
    """Names of the hosts with samples in training files (or directories of them), and their failed hosts.

    A path that does not exist holds no host (the first chunk of a dataset has no
    predecessors); a file that is not a readable training file is an error. A host listed
    without samples (its samples were still to come) is not done.
    """
    from defectnet.data.training_file import training_file_hosts, training_file_paths

    names: set[str] = set()
    for f in training_file_paths(paths, missing_ok=True):
        try:
            done, failed = training_file_hosts(f)
        except DefectnetError as exc:
            raise DefectnetError(f"hosts.exclude_from: {exc}") from None
        names |= done | failed
    return names


@dataclass(frozen=True)
class SampleJob:
    """One doped sample to compute: everything drawn in the client, from seeds."""

    index: int
    seed: int  # the sample's root seed; every draw below comes from it
    dopants: tuple  # ((element, site element, requested atomic fraction), ...)
    candidates: tuple[str, ...]
    distractors: tuple[str, ...]
    placement_seed: int  # which atoms of the site sublattice are replaced


@dataclass
class HostPlan:
    """A host's recommendations, dopant pool and sample jobs (or why it has none)."""

    host: HostInput
    records: list = field(default_factory=list)
    pool: tuple[str, ...] = ()
    jobs: dict[int, SampleJob] = field(default_factory=dict)
    failure: tuple[str, str] | None = None  # (reason, message)


def sample_seed(seed: int, host: str, index: int) -> int:
    """63-bit root seed of sample ``index`` of ``host`` under config seed ``seed``."""
    h = int.from_bytes(hashlib.blake2b(host.encode(), digest_size=8).digest(), "little")
    return int(np.random.SeedSequence([int(seed), h, int(index)]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def draw_seeds(seed: int) -> tuple[int, int, int]:
    """The (scenario, distractor, placement) seeds a sample's root ``seed`` splits into."""
    return tuple(int(x >> np.uint64(1)) for x in np.random.SeedSequence(seed).generate_state(3, np.uint64))


#: The sample index whose seed draws a host's dopant pool (beyond any real sample index).
POOL_INDEX = 2**62


def choose_pool(scores: dict[str, float], sampler: SamplerSettings, seed: int) -> tuple[str, ...]:
    """A host's dopant pool from its recommended elements' best scores (see ``SamplerSettings.pool_choice``)."""
    order = sorted(scores, key=lambda el: (-scores[el], el))
    k = min(sampler.dopant_pool, len(order))
    if sampler.pool_choice == "best" or k == len(order):
        return tuple(order[:k])
    w = np.array([max(scores[el], 1e-6) for el in order])
    picked = np.random.default_rng(seed).choice(len(order), size=k, replace=False, p=w / w.sum())
    return tuple(order[i] for i in sorted(picked))


def placeable(records, sampler: SamplerSettings, atoms: Atoms, exclude=frozenset()) -> list:
    """The recommender records whose dopant may be placed in ``atoms`` (see ``SamplerSettings``).

    Not an ``exclude``d (dopant, site element) pair; a covalent radius within
    ``sampler.max_radius_mismatch`` of the site's; on ionic sites with
    ``sampler.isovalent_ionic``, the site's oxidation state.
    """
    records = [r for r in records if (r.dopant, r.site) not in exclude]
    if sampler.max_radius_mismatch is not None:
        from defectnet.hosts.chemistry import covalent_radius

        records = [r for r in records
                   if abs(covalent_radius(r.dopant) / covalent_radius(r.site) - 1) <= sampler.max_radius_mismatch]
    if sampler.isovalent_ionic:
        from defectnet.recommend import keeps_valence
        from defectnet.sites import ionic_sites

        ionic = ionic_sites(atoms)
        records = [r for r in records if r.site not in ionic or keeps_valence(r, ionic[r.site])]
    return records


def explicit_pool(entries, records, atoms: Atoms, exclude=frozenset()) -> list:
    """Records for a user's pool (``El`` or ``El@Site``, see ``SamplerSettings.pools``).

    ``El`` takes every recommended site of El; ``El@Site`` that site (score 1 when the
    recommender does not propose it). Excluded (unstable) pairs are left out.
    """
    from defectnet.recommend import DopantRecord

    hosts_els = set(atoms.get_chemical_symbols())
    out = []
    for entry in entries:
        el, _, site = entry.partition("@")
        if site:
            if site not in hosts_els:
                raise DefectnetError(f"sampler.pools: {entry}: the host has no {site} site (it has "
                                     f"{', '.join(sorted(hosts_els))})")
            mine = [r for r in records if r.dopant == el and r.site == site] or [DopantRecord(el, site, 1.0, "user")]
        else:
            mine = [r for r in records if r.dopant == el]
            if not mine:
                raise DefectnetError(f"sampler.pools: the recommender proposes no site for {el}; write {el}@Site")
        out += [r for r in mine if (r.dopant, r.site) not in exclude]
    return out


def plan_host(host: HostInput, config: GenerateConfig, recommender, indices, exclude=frozenset()) -> HostPlan:
    """Recommend dopants for ``host``, choose its pool and draw the jobs ``indices``.

    ``exclude``: (dopant, site element) pairs that cannot be placed (their force-constant
    patch is unstable); they stay possible distractors.
    """
    from defectnet.sampling import sample_candidates, sample_scenario

    plan = HostPlan(host)
    try:
        records = recommender.recommend(host.atoms, n=config.sampler.n_recommend)
    except DefectnetError as exc:
        plan.failure = ("no_dopants", f"the recommender failed: {exc}")
        return plan
    entries = config.sampler.pool_for(host.name)
    if entries is not None:
        try:
            allowed = explicit_pool(entries, records, host.atoms, exclude)
        except DefectnetError as exc:
            plan.failure = ("no_dopants", str(exc))
            return plan
        pool = tuple(dict.fromkeys(r.dopant for r in allowed))
    else:
        allowed = placeable(records, config.sampler, host.atoms, exclude)
        best: dict[str, float] = {}
        for r in allowed:
            best[r.dopant] = max(best.get(r.dopant, 0.0), r.score)
        pool = choose_pool(best, config.sampler, sample_seed(config.seed, host.name, POOL_INDEX))
    plan.records, plan.pool = records, pool
    if not pool:
        limit = config.sampler.max_radius_mismatch
        why = [f"within {limit:.0%} of a site's covalent radius (sampler.max_radius_mismatch)"] if limit else []
        why += ["of an ionic site's valence (sampler.isovalent_ionic)"] if config.sampler.isovalent_ionic else []
        plan.failure = ("no_dopants", "the recommender proposes no dopant for this host" + (
            " " + " and ".join(why) if why and records and entries is None else ""))
        return plan
    pool_records = [r for r in allowed if r.dopant in pool]
    counts = dict(Counter(host.atoms.get_chemical_symbols()))
    sampler = config.sampler_config()
    for i in indices:
        s = sample_seed(config.seed, host.name, i)
        scen_seed, distractor_seed, placement_seed = draw_seeds(s)
        try:
            scen = sample_scenario(pool_records, counts, sampler, scen_seed)
        except DefectnetError as exc:
            plan.failure = ("no_dopants", f"no scenario can be drawn: {exc}")
            return plan
        cands, distractors = sample_candidates(scen.elements, records, config.sampler.n_distractors,
                                               np.random.default_rng(distractor_seed))
        plan.jobs[i] = SampleJob(i, s, scen.dopants, cands, distractors, placement_seed)
    return plan
