"""Signature bases of a store's hosts, built from the force-constant patches it already holds.

A host's :class:`~defectnet.unmix.SignatureBasis` (each candidate dopant alone in the
supercell at a few concentrations) costs one MLIP patch per candidate when simulated from
scratch (``defectnet basis``: 8–22 min per host on one core). A generation store has computed
those patches for every dopant of the host's pool, so the basis of the pool costs only its
cells (a few seconds each) and no force call. With a basis beside every generated host,
analysis by synthesis (:mod:`defectnet.unmix`) can be scored on any host of a dataset, not
only on the few whose bases were simulated by hand.

The basis is exactly what ``defectnet basis`` gives with the store's settings
(:meth:`~defectnet.data.config.GenerateConfig.simulation_config`); its candidates are the
host's dopant pool, the elements placed in its successful samples, each on the site it was
placed on most often (an element placed on more than one site is named in the result's notes).
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from defectnet.errors import DefectnetError


@dataclass(frozen=True)
class StoreBasesResult:
    """What :func:`store_bases` did: hosts written, already there, and skipped (with why); ``notes``,
    one line each, name the choices made for the user (an element placed on two sites of a host)."""

    written: tuple[str, ...]
    existing: tuple[str, ...]
    skipped: dict
    notes: tuple[str, ...] = ()


def pool_site_counts(store) -> dict[str, dict[str, collections.Counter]]:
    """{host: {element: Counter(host site symbol -> successful samples)}}: where each host's pool was placed."""
    placed = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
    for row in store.samples():
        for el, site, *_ in row["dopants"]:
            placed[row["host"]][el][site] += 1
    return placed


def pool_sites(store) -> dict[str, dict[str, str]]:
    """{host: {element: host site symbol}}: the dopants of each host's successful samples (its pool).

    An element placed on more than one site is given the site it was placed on most often.
    """
    return {h: most_frequent_sites(h, els)[0] for h, els in sorted(pool_site_counts(store).items())}


def most_frequent_sites(host: str, counts) -> tuple[dict[str, str], list[str]]:
    """Each element's most frequent site (of equal counts, the one counted first), and a note per element
    seen on several.

    Parameters
    ----------
    host : str
        Named in the notes.
    counts : dict of str to Counter
        {element: Counter(host site symbol -> samples)}.

    Returns
    -------
    sites : dict of str to str
        {element: site}.
    notes : list of str
        One line per element placed on more than one site: the host, the element, each site and its
        samples, and the site chosen (a basis holds one site per element, so the others go unexplained).
    """
    sites, notes = {}, []
    for el, c in sorted(counts.items()):
        ranked = c.most_common()  # stable: a tie keeps the order counted in, as pool_sites always did
        sites[el] = ranked[0][0]
        if len(ranked) > 1:
            seen = ", ".join(f"{site} in {n}" for site, n in ranked)
            notes.append(f"{host}: {el} sits on {len(ranked)} sites ({seen} samples); its basis puts it on {sites[el]}")
    return sites, notes


def recorded_site_counts(paths) -> dict[str, dict[str, collections.Counter]]:
    """{host: {element: Counter(host site symbol -> samples)}} over the training files that record sites.

    Files exported before sites were recorded add nothing (their hosts' sites are replayed:
    :func:`generation_sites`); a sample that several files hold (same host, id and seed) counts once.
    """
    from defectnet.data.training_file import training_file_paths, training_file_sites

    samples = {}
    for path in training_file_paths(paths):
        for key, sites in (training_file_sites(path) or {}).items():
            samples.setdefault(key, sites)
    counts = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
    for (host, _, _), sites in samples.items():
        for el, site in sites.items():
            counts[host][el][site] += 1
    return counts


def store_bases(store_path, out_dir, *, concentrations=(0.01, 0.05, 0.15), hosts=None,
                progress: bool = True) -> StoreBasesResult:
    """Write ``out_dir/<host>.npz``, the signature basis of each host's dopant pool.

    Parameters
    ----------
    store_path : path
        A generation store (read only; it may be written by a running ``generate``).
    out_dir : path
        One ``.npz`` per host (:meth:`~defectnet.unmix.SignatureBasis.save`). A host whose
        file exists is left alone, so a rerun picks up where a stopped one ended, unless the
        file lacks part of the pool or puts a dopant on another site (:func:`stale_basis`:
        made from a store stopped mid-run); then it is built again, with a note.
    concentrations : tuple of float
        Atomic fractions of the basis cells (:class:`~defectnet.unmix.BasisConfig`).
    hosts : list of str, optional
        Only these hosts (default: every host with successful samples). Hosts with samples
        still to generate are skipped: their pool may grow.

    Returns
    -------
    StoreBasesResult
    """
    from defectnet.data.config import GenerateConfig
    from defectnet.data.export import incomplete_hosts
    from defectnet.data.store import Store
    from defectnet.unmix import BasisConfig, signature_basis

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, existing, skipped, notes = [], [], {}, []
    with Store(store_path, "r") as store:
        raw = store.get_meta("config")
        if raw is None:
            raise DefectnetError("not a generation store (no config)", source=str(store_path))
        cfg = GenerateConfig.from_dict(raw)
        if cfg.tier == "mass":
            raise DefectnetError("a mass-tier store has no patches to build bases from", source=str(store_path))
        bcfg = BasisConfig(concentrations=tuple(concentrations), simulation=cfg.simulation_config())
        chosen = {h: most_frequent_sites(h, c) for h, c in sorted(pool_site_counts(store).items())}  # (sites, notes)
        pools = {h: sites for h, (sites, _) in chosen.items()}
        names = list(pools) if hosts is None else list(hosts)
        unknown = sorted(set(names) - set(pools))
        if unknown:
            raise DefectnetError(f"no successful samples of {', '.join(unknown)} in the store", source=str(store_path))
        running = set(incomplete_hosts(store))  # its pool may still grow: wait for the host to finish
        skipped |= {n: "incomplete: samples are still to be generated (run again when they are)"
                    for n in names if n in running}
        names = [n for n in names if n not in running]
        if progress:
            from tqdm.auto import tqdm

            names = tqdm(names, desc="signature bases", unit="host")
        for name in names:
            path = out_dir / f"{name}.npz"
            if path.exists():
                stale = stale_basis(path, pools[name])
                if not stale:
                    existing.append(name)
                    continue
                notes.append(f"{name}: the basis there {stale}; built again")
            host, _ = _host_with_patches(store, cfg, name)
            notes += chosen[name][1]
            specs = [f"{el}@{site}" for el, site in pools[name].items()]
            checkpoint = out_dir / f".{name}.cells.npz"
            try:
                basis = signature_basis(host.atoms, specs, bcfg, pristine_host=host, progress=False,
                                        checkpoint=checkpoint, synthesis=False)  # the store holds them
            except DefectnetError as exc:
                skipped[name] = str(exc)
                continue
            basis.host = name  # the store's host name, not the formula signature_basis gives an Atoms
            basis.config["source"] = {"store": Path(store_path).name, "identity_hash": store.get_meta("identity_hash")}
            basis.save(path, dtype=np.float32)  # committed beside the chunks: half the size
            checkpoint.unlink(missing_ok=True)
            written.append(name)
    return StoreBasesResult(tuple(written), tuple(existing), skipped, tuple(notes))


def stale_basis(path, sites: dict[str, str | None]) -> str | None:
    """How the basis file at ``path`` falls short of a host's pool ``{element: site}`` (a basis
    made from a store stopped mid-run lacks the dopants drawn later), or None when it has them.
    A site of None (not recorded) is not compared."""
    from defectnet.signatures import SignatureBasis

    basis = SignatureBasis.load(path)
    have = basis.sites
    lacks = sorted(set(sites) - set(have) - set(basis.failed))  # a failed candidate stays failed
    moved = sorted(el for el, site in sites.items() if site is not None and el in have and have[el] != site)
    if not (lacks or moved):
        return None
    return "; ".join(filter(None, [f"lacks {', '.join(lacks)}" if lacks else "",
                                   f"puts {', '.join(moved)} on another site" if moved else ""]))


def training_file_bases(paths, out_dir, *, concentrations=(0.01, 0.05, 0.15), hosts=None, potential: str | None = None,
                        progress: bool = True) -> StoreBasesResult:
    """Write ``out_dir/<host>.npz`` for the hosts of committed training files, simulated with the engine.

    For data whose store is gone: each host's basis is simulated from scratch (``defectnet
    basis``) with the generation settings its training file records, its candidates the host's
    dopant pool (every element that is a true dopant in one of its samples in any of the files
    (:func:`host_pools_in_files`), each on the site its
    samples were placed on: the site the files record (``dopant_site``), most frequent over the
    host's samples of all ``paths``; an element placed on two sites gets a line in the result's
    notes. Files exported before sites were recorded have :func:`generation_sites` replay the
    planner of the file's config; :func:`~defectnet.doping.auto_site` put Ag on I in KI, not on K
    where the data has it). Resumable at
    three levels: a host whose file exists is skipped (unless it lacks part of the pool or puts
    a dopant on another site, :func:`stale_basis`), a host's finished cells are kept in a
    checkpoint, and its relaxed cell and patches in the engine's disk cache
    (:mod:`defectnet.phonons.cache`). Costs 5–25 min of one core per host.

    Parameters
    ----------
    paths : str
        Training files or directories of them, comma-separated (as ``defectnet train --data``).
    out_dir, concentrations, hosts
        As for :func:`store_bases`; ``hosts`` default: every host of the files without a basis.
    potential : str, optional
        Simulate with this MLIP instead of the one the files record (all other settings theirs).
    """
    from defectnet.unmix import BasisConfig, signature_basis

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, existing, skipped, notes = [], [], {}, []
    recorded = recorded_site_counts(paths)  # over all files: a host two files hold is one basis
    recommenders = {}  # (n_recommend, vocabulary) -> the planner's recommender
    for name, (elements, cfg, path, drawn_by) in host_pools_in_files(paths, hosts).items():
        got = recorded.get(name, {})
        sites, why = most_frequent_sites(name, {el: got[el] for el in elements if el in got})
        target = out_dir / f"{name}.npz"
        if target.exists():  # judged on the recorded sites: no planner replay for a basis that is kept
            stale = stale_basis(target, {el: sites.get(el) for el in elements})
            if not stale:
                existing.append(name)
                continue
            notes.append(f"{name}: the basis there {stale}; built again")
        notes += why
        host = _host_input(name, cfg)
        by_config: dict[int, tuple[object, list[str]]] = {}  # each element's site as the generation that drew it placed it
        for el in (el for el in elements if el not in sites):
            by_config.setdefault(id(drawn_by[el]), (drawn_by[el], []))[1].append(el)
        for cfg_el, group in by_config.values():
            sites |= generation_sites(host, cfg_el, _recommender(cfg_el, recommenders), group)
        sim = cfg.simulation_config()
        bcfg = BasisConfig(concentrations=tuple(concentrations),
                           simulation=replace(sim, potential=potential) if potential else sim)
        specs = [f"{el}@{sites[el]}" if sites.get(el) else el for el in elements]
        if progress:
            print(f"{name}: basis of {', '.join(specs)} ({Path(path).name})", flush=True)
        try:
            basis = signature_basis(host.atoms, specs, bcfg, progress=progress,
                                    checkpoint=out_dir / f".{name}.cells.npz", synthesis=False)
        except DefectnetError as exc:
            skipped[name] = str(exc)
            continue
        basis.host = name
        basis.config["source"] = {"training_file": Path(path).name}
        basis.save(target, dtype=np.float32)
        (out_dir / f".{name}.cells.npz").unlink(missing_ok=True)
        written.append(name)
    return StoreBasesResult(tuple(written), tuple(existing), skipped, tuple(notes))


def host_pools_in_files(paths, hosts=None) -> dict[str, tuple[list[str], object, Path, dict]]:
    """{host: (dopant pool, generation config, first file, {element: config of the file that
    first drew it})} over every training file of ``paths``.

    A host's pool is every element that is a true dopant in one of its samples, in any file
    (a host two chunks hold, drawn with two pools, gets one basis of both); its settings are
    those of the first file that holds it, and each element's site is replayed with the config
    of the file that drew it (:func:`generation_sites`).
    """
    from defectnet.data.config import GenerateConfig
    from defectnet.data.training_file import training_file_paths
    from defectnet.model.dataset import host_pools, load_training_file

    out: dict[str, tuple[list[str], object, Path, dict]] = {}
    for path in training_file_paths(paths):
        data = load_training_file(path)
        raw = data.attrs.get("config")
        if not raw:
            raise DefectnetError("the training file records no generation config to simulate its bases with",
                                 source=str(path))
        cfg = GenerateConfig.from_dict(json.loads(raw) if isinstance(raw, str) else raw)
        pools = host_pools(data)
        for h, name in enumerate(str(n) for n in data.host_names):
            if hosts is not None and name not in hosts or not pools[h].any():
                continue
            elements, first_cfg, first_path, drawn_by = out.get(name, ([], cfg, path, {}))
            new = [el for el, on in zip(data.vocabulary, pools[h]) if on and el not in drawn_by]
            out[name] = (elements + new, first_cfg, first_path, {**drawn_by, **dict.fromkeys(new, cfg)})
    return out


def _recommender(cfg, cache: dict):
    """The planner's recommender of a generation config, fitted once per (n_recommend, vocabulary) in ``cache``."""
    from defectnet.data.plan import planner_recommender

    key = (cfg.sampler.n_recommend, tuple(cfg.sampler.vocabulary or ()))
    if key not in cache:
        cache[key] = planner_recommender(cfg.sampler)
    return cache[key]


def _host_input(name: str, cfg):
    """Host ``name`` of a generation config as its planner saw it: its inline structure, or the library's."""
    from defectnet.data.config import HostSelection
    from defectnet.data.plan import resolve_hosts

    inline = name in cfg.hosts.structures
    return resolve_hosts(HostSelection(structures={name: cfg.hosts.structures[name]}) if inline
                         else HostSelection(names=(name,)))[0]


def generation_sites(host, cfg, recommender, elements) -> dict[str, str | None]:
    """{element: host site symbol} each of ``elements`` was placed on by a generation with ``cfg``.

    For data whose store is gone and whose training files record no sites (a store says it:
    :func:`pool_sites`; newer files too: :func:`recorded_site_counts`): the planner is replayed
    (:func:`~defectnet.data.plan.plan_host`, ``host`` a :class:`~defectnet.data.plan.HostInput`,
    ``cfg.samples_per_host`` samples, no patch excluded) and each element gets the site it was
    drawn on most often; an element the replay never draws (its pool then differed), the site of
    its best placeable recommendation, else None (:func:`~defectnet.doping.auto_site`). On
    KI-wurtzite (chunk-007) the replay's requested fractions match all 96 samples' targets.
    """
    from defectnet.data.plan import placeable, plan_host

    counts = collections.defaultdict(collections.Counter)
    plan = plan_host(host, cfg, recommender, range(cfg.samples_per_host))
    for job in plan.jobs.values():
        for el, site, _ in job.dopants:
            counts[el][site] += 1
    best = {}
    for r in sorted(placeable(plan.records, cfg.sampler, host.atoms), key=lambda r: -r.score):
        best.setdefault(r.dopant, r.site)
    return {el: counts[el].most_common(1)[0][0] if counts[el] else best.get(el) for el in elements}


def _host_with_patches(store, cfg, name: str):
    """(PristineHost with the store's ok patches in its cache, doped-supercell matrix) of host ``name``."""
    from defectnet.data.blobs import cache_patches, unpack_pristine

    row = store.host(name)
    if row is None or row["status"] != "ok":
        raise DefectnetError(f"no relaxed host {name!r} in the store", source=str(store.path))
    host, P = unpack_pristine(row["pristine"], cfg.host)
    cache_patches(host, [p["data"] for p in store.patches(row["id"], blobs=True) if p["status"] == "ok"],
                  cfg.tier_settings)
    return host, P


def store_synthesizer(store_path, host: str):
    """The :class:`~defectnet.synthesis.Synthesizer` of a store's host: its pool on the sites it was
    placed on, with the store's settings and supercell (for :func:`~defectnet.synthesis.refine`)."""
    from defectnet.data.config import GenerateConfig
    from defectnet.data.store import Store
    from defectnet.synthesis import Synthesizer

    with Store(store_path, "r") as store:
        cfg = GenerateConfig.from_dict(store.get_meta("config"))
        h, P = _host_with_patches(store, cfg, host)
        sites = pool_sites(store).get(host, {})
    return Synthesizer(h, sites, cfg.simulation_config(), supercell_matrix=P)  # placed as the store's samples
