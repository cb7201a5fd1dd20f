"""Dataset generation: the Dask pipeline (client side) that runs the tasks of :mod:`.tasks`.

The config is :mod:`.config`, the per-host plan :mod:`.plan`, the stored blobs :mod:`.blobs`;
the pipeline's Dask side is :mod:`.dispatch`, its store writes, counts and progress bar :mod:`.recorder`.

The work of one host is three kinds of task, each committed to the store as it finishes:

1. **pristine** (one per host): relax, phonopy force constants, q-mesh PDoS, the doped
   supercell's pristine force constants and spectra. Stored as a ``hosts`` row with the
   force constants, so a restart or a later run with more samples never recomputes it.
2. **patch** (patch tier; one per (primitive site, dopant element) the host's samples
   need): δΦ around one dopant in the small force-constant cell, ~100 force calls.
   Stored as a ``patches`` row. True dopants come from a per-host pool of the
   ``dopant_pool`` best recommended elements, which bounds the patches per host.
3. **samples** (``samples_per_task`` doped samples): substitute, transplant patches,
   two eigen-decompositions; no force call at all in the patch tier. Stored as
   ``samples`` rows, one transaction per task.

Everything a sample is made of — dopants, concentrations, distractors, dopant sites — is
drawn from seeds derived from (config seed, host name, sample index), never from arrival
order, so an interrupted-and-resumed run and an uninterrupted one give the same rows.

Only the client process writes to SQLite; workers return finished rows with their arrays
already compressed, so the writer does nothing but INSERTs (its rate is measured in
``benchmarks/generation.py``).

Running on a cluster (SLURM, PBS, ...)
--------------------------------------
Start a Dask cluster with `dask-jobqueue <https://jobqueue.dask.org>`_ and give its
scheduler address to ``--scheduler``; the store stays on the machine running
``defectnet generate`` (a login or interactive node), workers need only defectnet and the
potential installed, never the store::

    # cluster.py — run with: python cluster.py   (keeps the cluster up; prints the address)
    from dask_jobqueue import SLURMCluster        # or PBSCluster
    cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="12:00:00",
                           job_extra_directives=["--cpus-per-task=1"])
    cluster.scale(jobs=100)                       # or cluster.adapt(maximum_jobs=1000)
    print(cluster.scheduler_address); input("press enter to stop")

    defectnet generate --config my.yaml --out data/big.sqlite --scheduler tcp://10.0.0.5:8786

Give workers one thread each (``cores=1`` / ``--nthreads 1``): a worker holds one copy of
the potential, and tasks within a worker are serialised anyway. Workers that come and go
(pre-empted jobs, ``adapt``) are fine: a lost task is rescheduled by Dask, and a killed
client is resumed by running the same command again.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


from defectnet.data.blobs import derive_patch, pack_patch, site_equivalence, unpack_patch
from defectnet.data.cluster import dask_client, existing_client
from defectnet.data.config import EXTENT_KEYS, GenerateConfig
from defectnet.data.dispatch import Dispatch
from defectnet.data.plan import HostInput, HostPlan, SampleJob, plan_host, resolve_hosts
from defectnet.data.recorder import Progress, Recorder
from defectnet.data.store import stored_hosts
from defectnet.data.summary import GenerateSummary
from defectnet.data.tasks import DefectnetWorkerSetup, package_version, patch_task, pristine_task, samples_task
from defectnet.errors import DefectnetError
from defectnet.phonons.tiers import get_tier


@dataclass
class _HostState:
    host: HostInput
    plan: HostPlan | None = None
    host_id: int | None = None
    symbols: list = field(default_factory=list)
    pristine: object = None  # Future of the pristine blob on the cluster
    patch_status: dict = field(default_factory=dict)  # (site, element) -> 'pending' | 'ok' | (reason, error)
    patch_futures: dict = field(default_factory=dict)  # (site, element) -> Future of the blob
    equivalence: dict = field(default_factory=dict)  # site -> (representative site, Cartesian rotation)
    derived: dict = field(default_factory=dict)  # representative key -> keys waiting to be rotated from it
    waiting: list = field(default_factory=list)  # jobs not yet submitted
    in_flight: int = 0  # samples submitted, not yet committed
    doomed: list = field(default_factory=list)  # jobs that need a failed patch: drawn again or failed at the end
    excluded: frozenset = frozenset()  # (dopant, site element) pairs the current plan avoids

    def set_primitive(self, blob: bytes):
        """Primitive-cell symbols and site symmetry, from the pristine blob."""
        from defectnet.data.store import unpack_arrays

        a = unpack_arrays(blob)
        self.symbols = [_symbol(z) for z in a["numbers"]]
        self.equivalence = site_equivalence(a["cell"], a["scaled_positions"], a["numbers"])

    def representative(self, key):
        return (self.equivalence.get(key[0], (key[0], None))[0], key[1])

    def needs(self, job: SampleJob, tier: str) -> set:
        if not get_tier(tier).uses_patches:  # patches are computed per host before its samples
            return set()
        return {(i, el) for el, site, _ in job.dopants for i, s in enumerate(self.symbols) if s == site}


class _Pipeline:
    """The client's loop: opens hosts, submits their tasks as inputs become ready, commits results.

    What each host needs next is decided here; the Dask side is :class:`~defectnet.data.dispatch.Dispatch`
    (``self.dispatch``, during :meth:`run`), the store's rows and the counts are
    :class:`~defectnet.data.recorder.Recorder` (``self.record``) and its :class:`~defectnet.data.recorder.Progress`.
    """

    def __init__(self, store, config: GenerateConfig, hosts: list[HostInput], progress: bool, exported=frozenset()):
        self.store, self.config = store, config
        self.hosts = hosts
        # indices of each host's samples that committed training files hold or record as failed (--skip-in)
        self.skip = skipped_indices(hosts, exported, config.samples_per_host)
        self.dispatch = None
        self.recommender = None
        self.progress = Progress(progress)
        self.record = Recorder(store, config, self.progress)

    # ----------------------------------------------------------------- run
    def plan(self) -> int:
        """Find what is left to do (from the store); returns the number of samples to compute."""
        cfg = self.config
        done_per_host = {}
        for host, index in self.store.conn.execute("SELECT host, sample_index FROM samples"):
            done_per_host.setdefault(host, set()).add(int(index))
        status_of = {h["name"]: h for h in self.store.hosts()}
        queue, total, initial = [], 0, 0
        for h in self.hosts:
            row = status_of.get(h.name)
            if row is not None and row["structure_hash"] != h.structure_hash:
                raise DefectnetError(f"host {h.name!r} in the store has a different structure than the config gives; "
                                     "rename the host or use a new store")
            if row is not None and row["status"] == "failed":
                continue  # a recorded failure is final (use --retry-failed)
            done = (done_per_host.get(h.name, set()) | self.skip.get(h.name, set())) & set(range(cfg.samples_per_host))
            stored = len(done)
            total += cfg.samples_per_host
            initial += stored
            if stored < cfg.samples_per_host:  # a host all done (in the store or in --skip-in files) is not opened
                queue.append(_HostState(h))
        self.n_skipped, self.total = initial, total
        self.queue = queue
        self.open: list[_HostState] = []
        return total - initial

    def run(self, client):
        """Compute what :meth:`plan` found left to do on ``client``, committing each result as it comes."""
        self.dispatch = Dispatch(client)
        self.progress.start(self.total, self.n_skipped)
        self._fill()
        for kind, state, result, error, payload in self.dispatch.finished():
            getattr(self, f"_on_{kind}")(state, result, error, payload)
            self._fill()
        self.progress.close()

    def _fill(self):
        """Open hosts until enough are in progress to keep every worker busy."""
        while self.queue and len(self.open) < self.dispatch.max_open():
            state = self.queue.pop(0)
            self.open.append(state)
            self._open(state)
        self.progress.hosts(len(self.open), len(self.queue))

    def _close(self, state: _HostState):
        state.pristine = None
        state.patch_futures.clear()
        if state in self.open:
            self.open.remove(state)

    def _recommender(self):
        if self.recommender is None:
            from defectnet.data.plan import planner_recommender

            self.recommender = planner_recommender(self.config.sampler)
        return self.recommender

    def _open(self, state: _HostState):
        cfg, h = self.config, state.host
        row = self.store.host(h.name, blobs=True)  # plan() skips failed hosts: a stored one is ok
        done = (set(self.store.done_samples(row["id"])) if row else set()) | self.skip.get(h.name, set())
        missing = [i for i in range(cfg.samples_per_host) if i not in done]
        if row is not None:  # a resumed host avoids its unstable patches at once
            state.set_primitive(row["pristine"])
            state.excluded = frozenset(k for k, bad in self._stored_pairs(state, row["id"]).items() if bad)
        state.plan = plan_host(h, cfg, self._recommender(), missing, exclude=state.excluded)
        if state.plan.failure:
            reason, msg = state.plan.failure
            self.record.add_host(state, {"status": "failed", "reason": reason, "error": msg, "created": time.time()})
            self._host_failed(state, reason, len(missing))
            return
        state.waiting = [state.plan.jobs[i] for i in missing]
        if row is None:
            self.dispatch.submit("pristine", state, pristine_task, h, cfg)
            return
        state.host_id = row["id"]
        state.pristine = self.dispatch.scatter(row["pristine"])
        self._start_patches(state)

    def _host_failed(self, state: _HostState, reason: str, n_samples: int):
        self.progress.count("hosts", "failed", "host", reason)
        self.progress.drop(n_samples)
        self._close(state)

    # ----------------------------------------------------------------- results
    def _on_pristine(self, state: _HostState, result, error, payload):
        if error:
            result = {"status": "failed", "reason": error[0], "error": error[1], "created": time.time()}
        state.host_id, row = self.record.add_host(state, result)
        if row["status"] != "ok":
            self._host_failed(state, row["reason"], len(state.waiting))
            return
        self.progress.count("hosts", "ok", "host")
        state.set_primitive(row["pristine"])
        state.pristine = self.dispatch.scatter(row["pristine"])
        self._start_patches(state)

    def _start_patches(self, state: _HostState):
        """Take stored patches, rotate those of equivalent sites, compute one per orbit and element."""
        needed = set().union(*(state.needs(j, self.config.tier) for j in state.waiting)) if state.waiting else set()
        stored = {(p["site"], p["element"]): p for p in self.store.patches(state.host_id, blobs=True)}
        for key in sorted(needed):  # first register who waits for whom ...
            rep = state.representative(key)
            if key not in stored and rep != key:
                state.patch_status[key] = "pending"
                state.derived.setdefault(rep, []).append(key)
        for key in sorted(needed):  # ... then resolve or compute
            if key in stored:
                self._patch_known(state, key, stored[key], commit=False)
            elif state.representative(key) == key:
                self._submit_patch(state, key)
        self._submit_samples(state)

    def _submit_patch(self, state: _HostState, key):
        state.patch_status[key] = "pending"
        self.dispatch.submit("patch", state, patch_task, state.host.name, state.pristine, key[0], key[1], self.config,
                     payload=key)

    def _on_patch(self, state: _HostState, row, error, key):
        if error:
            row = {"site": key[0], "element": key[1], "status": "failed", "reason": error[0], "error": error[1],
                   "created": time.time()}
        self._patch_known(state, key, row, commit=True)
        self._submit_samples(state)

    def _patch_known(self, state: _HostState, key, row: dict, *, commit: bool):
        """A patch row is final (computed, rotated or stored): record it, and resolve its equivalent sites."""
        if commit:
            self.record.add_patch(state, row)
        if row["status"] == "ok":
            state.patch_status[key] = "ok"
            state.patch_futures[key] = self.dispatch.scatter(row["data"])
        else:
            state.patch_status[key] = (row["reason"], row["error"])
        for dkey in state.derived.pop(key, []):
            if state.patch_status.get(dkey) != "pending":
                continue
            t0 = time.perf_counter()
            base = {"site": dkey[0], "element": dkey[1], "worker": "client", "code_version": package_version(),
                    "created": time.time()}
            if row["status"] != "ok":
                drow = {**base, "status": "failed", "reason": row["reason"],
                        "error": f"representative site {key[0]} failed: {row['error']}"}
            else:
                patch = derive_patch(unpack_patch(row["data"]), state.equivalence[dkey[0]][1], dkey[0])
                if patch is None:  # a Patch field we cannot rotate: compute it
                    self._submit_patch(state, dkey)
                    continue
                drow = {**base, "status": "ok", "force_calls": 0, "data": pack_patch(patch)}
            drow["timings"] = {"derived_from_site": key[0], "total_s": time.perf_counter() - t0}
            self._patch_known(state, dkey, drow, commit=True)

    def _submit_samples(self, state: _HostState):
        cfg = self.config
        pending = any(s == "pending" for s in state.patch_status.values())
        ready, doomed, still = [], [], []
        for job in state.waiting:
            status = [state.patch_status[k] for k in state.needs(job, cfg.tier)]
            if any(isinstance(s, tuple) for s in status):
                doomed.append(job)
            elif all(s == "ok" for s in status):
                ready.append(job)
            else:
                still.append(job)
        state.doomed += doomed  # drawn again without the unstable patches once this plan is through
        # While patches are still coming, only submit full tasks; the rest waits for them.
        n_full = len(ready) // cfg.samples_per_task * cfg.samples_per_task
        submit, keep = (ready, []) if not pending else (ready[:n_full], ready[n_full:])
        state.waiting = keep + still
        for start in range(0, len(submit), cfg.samples_per_task):
            chunk = submit[start:start + cfg.samples_per_task]
            keys = sorted(set().union(*(state.needs(j, cfg.tier) for j in chunk)))
            patches = [state.patch_futures[k] for k in keys]
            state.in_flight += len(chunk)
            self.dispatch.submit("samples", state, samples_task, state.host.name, state.host.prototype, state.pristine,
                         patches, chunk, cfg, payload=chunk)
        self._maybe_done(state)

    def _commit_doomed(self, state: _HostState, jobs, give_up: str | None = None):
        rows = []
        for job in jobs:
            bad = [(k, state.patch_status[k]) for k in sorted(state.needs(job, self.config.tier))
                   if isinstance(state.patch_status[k], tuple)]
            unstable = [b for b in bad if b[1][0] == "unstable_patch"]
            (site, el), (reason, err) = (unstable or bad)[0]
            err = f"patch {el}@{state.symbols[site]}[{site}] failed: {err}"
            if give_up and unstable:  # the host's verdict; a patch failed otherwise (a timeout) keeps its reason
                reason, err = "unstable_host", f"{give_up}; {err}"
            rows.append(self.record.failed_sample_row(state, job, reason, err))
        self.record.add_samples(state, rows)

    def _on_samples(self, state: _HostState, rows, error, jobs):
        if error:
            rows = [self.record.failed_sample_row(state, j, error[0], error[1]) for j in jobs]
        state.in_flight -= len(jobs)
        self.record.add_samples(state, rows)
        self._maybe_done(state)

    def fill(self, summary: GenerateSummary):
        """The run's counts and the writer's rate in ``summary``."""
        self.record.fill(summary, getattr(self, "n_skipped", 0))

    def _maybe_done(self, state: _HostState):
        pending = any(s == "pending" for s in state.patch_status.values())
        if not pending and not state.waiting and state.in_flight == 0:
            if state.doomed and self._replan(state):
                return
            self._close(state)

    def _replan(self, state: _HostState) -> bool:
        """Draw the doomed jobs again without the dopants whose patches proved unstable.

        The same (config, exclusions) give the same jobs, and a resumed host starts from its
        stored exclusions, so a rerun reproduces them. Returns False when nothing new can be
        avoided or the host gives up (the jobs are then committed as failed).
        """
        unstable = frozenset((el, state.symbols[site]) for (site, el), st in state.patch_status.items()
                             if isinstance(st, tuple) and st[0] == "unstable_patch")
        jobs, state.doomed = state.doomed, []
        gave_up = self._gives_up(state)
        if gave_up:
            self._commit_doomed(state, jobs, give_up=gave_up)
            return False
        plan = None
        if not unstable <= state.excluded:
            state.excluded = unstable | state.excluded
            plan = plan_host(state.host, self.config, self._recommender(), [j.index for j in jobs],
                             exclude=state.excluded)
        if plan is None or plan.failure:
            self._commit_doomed(state, jobs)
            return False
        state.waiting = [plan.jobs[j.index] for j in jobs]
        self._start_patches(state)
        return True

    def _stored_pairs(self, state: _HostState, host_id: int) -> dict:
        """(dopant, site element) -> whether it proved unstable on some site, over the host's stored patches."""
        bad = {}
        for p in self.store.patches(host_id):
            key = (p["element"], state.symbols[p["site"]])
            bad[key] = bad.get(key, False) or p["reason"] == "unstable_patch"
        return bad

    def _gives_up(self, state: _HostState) -> str | None:
        """Why the host draws no more dopants (``max_unstable_fraction`` exceeded), else None."""
        limit = self.config.max_unstable_fraction
        if limit is None:
            return None
        bad = self._stored_pairs(state, state.host_id)
        n_bad = sum(bad.values())
        if n_bad <= limit * len(bad):
            return None
        return f"{n_bad} of {len(bad)} dopants of this host have no stable position (max_unstable_fraction {limit})"


def _symbol(z) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(z)]


def _check_store_config(store, config: GenerateConfig):
    """A new store takes the config; an existing one must have the same identity."""
    import defectnet
    from defectnet.phonons.patches import PATCH_ALGORITHM
    from defectnet.phonons.potentials import potential_info
    from defectnet.provenance import library_versions

    stored = store.get_meta("identity_hash")
    if stored is None:
        info = potential_info(config.potential)
        store.set_meta(
            identity_hash=config.identity_hash(), config=config.to_dict(), grid=config.grid.to_dict(),
            grid_id=config.grid.grid_id, potential=info.to_dict(), tier=config.tier,
            broadening=config.broadening.to_dict(), defectnet_version=defectnet.__version__,
            versions=library_versions(), patch_algorithm=PATCH_ALGORITHM,
        )
        return
    made = store.get_meta("patch_algorithm", 1)
    if made != PATCH_ALGORITHM:  # stored patches would be silently reused and mixed with new ones
        raise DefectnetError(f"the store's force-constant patches were made by patch algorithm {made}; this defectnet "
                             f"makes version {PATCH_ALGORITHM} — use a new --out", source=str(store.path))
    if stored != config.identity_hash() and not _same_identity(store.get_meta("config"), config):
        old = store.get_meta("config") or {}
        new = config.to_dict()
        diff = sorted(k for k in set(old) | set(new) if k not in EXTENT_KEYS and old.get(k) != new.get(k))
        raise DefectnetError(
            f"the store was generated with a different config (differs in: {', '.join(diff) or '?'}); only "
            f"{', '.join(EXTENT_KEYS)} may change between runs — use a new --out", source=str(store.path))
    store.set_meta(config=config.to_dict(), identity_hash=config.identity_hash())


def skipped_indices(hosts, exported, samples_per_host: int) -> dict[str, set[int]]:
    """{host: indices of its samples whose (host, sample_id) is in ``exported``}, hosts with none left out."""
    from defectnet.data.schema import sample_id

    if not exported:
        return {}
    out = {h.name: {i for i in range(samples_per_host) if (h.name, sample_id(h.name, i)) in exported} for h in hosts}
    return {h: i for h, i in out.items() if i}


def finished_in_files(paths, config: GenerateConfig, retry_failed=False) -> tuple[frozenset, set[str]]:
    """``({(host, sample_id)}, {host})``: the samples that training files exported from stores of
    ``config`` hold or record as failed, and the hosts they record as failed — what ``generate
    --skip-in`` does not compute again. Failures whose reason ``retry_failed`` names (True: all)
    are left to compute. A file named on its own but of another config is a one-line error (its
    sample ids name other samples); in a directory named, files of other configs are passed over,
    so ``--skip-in datasets/reference`` reads the chunks this config exported among the others.
    """
    from defectnet.data.export import file_index
    from defectnet.data.training_file import given_paths, training_file_paths

    def retried(reason) -> bool:
        return retry_failed is True or (bool(retry_failed) and reason in retry_failed)

    samples, hosts = set(), set()
    for given in given_paths(paths):
        for path in training_file_paths([given]):
            index = file_index(path)
            if not _same_identity(index["config"], config):
                if given.is_dir():
                    continue
                raise DefectnetError("--skip-in: the file was generated with another config than this one",
                                     source=str(path))
            samples |= index["samples"] | {k for k, why in index["failed_samples"].items() if not retried(why)}
            hosts |= {h for h, why in index["failed_hosts"].items() if not retried(why)}
    return frozenset(samples), hosts


def _same_identity(stored_config, config: GenerateConfig) -> bool:
    """Whether a stored config, read by this defectnet, is ``config``'s identity.

    A setting added to defectnet after the store was made (with a default that reproduces
    the old behaviour) changes the identity hash but not what a row is; rebuilding the
    stored config fills it with its default, so such a store still resumes.
    """
    try:
        return GenerateConfig.from_dict(stored_config or {}).identity_hash() == config.identity_hash()
    except DefectnetError:  # a key this defectnet does not know: not the same identity
        return False


def run_generate(config: GenerateConfig, out, *, workers: int | None = None, scheduler: str | None = None,
                 client=None, processes: bool = True, progress: bool = True,
                 retry_failed: bool | Sequence[str] = False, skip_in=()) -> GenerateSummary:
    """Generate (or resume generating) the dataset ``config`` describes into the store ``out``.

    Parameters
    ----------
    config : GenerateConfig
    out : str or Path
        The SQLite store; created if missing, resumed otherwise (finished rows are skipped).
    workers : int, optional
        Worker processes of the ``LocalCluster`` (default: one per core).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``) instead.
    client : distributed.Client, optional
        An existing client (benchmarks, tests); ``workers`` and ``scheduler`` are ignored.
    processes : bool
        LocalCluster with processes (default) or threads in this process (debugging).
    progress : bool
        Progress bar (rate and ETA) on stderr.
    retry_failed : bool or sequence of str
        Delete the failed rows first (all, or those with these reasons, e.g.
        ``["imaginary_modes"]`` after raising ``placement_attempts``), so they are computed again.
    skip_in : path or iterable of paths
        Training files (or directories of them) exported from an earlier store of this config:
        the samples they hold or record as failed (same host, sample id and seed) are not
        computed again, so a long generation goes on from its committed exports in an empty
        store (a new machine, a lost store). Failures whose reason ``retry_failed`` names are
        computed again; a file named on its own but made with another config is an error, such
        files in a directory given are passed over.

    Returns
    -------
    GenerateSummary
    """
    from defectnet.data.store import Store

    t0 = time.perf_counter()
    in_store = stored_hosts(out)
    if progress and config.hosts.order == "cheapest":  # sizing every host's cell takes ~1 min for the whole library
        print("generate: choosing hosts, cheapest force-constant cell first", file=sys.stderr, flush=True)
    hosts = resolve_hosts(config.hosts, config.host, keep=in_store)  # config errors before anything starts
    summary = GenerateSummary(store=str(out), workers="-", wall_s=0.0)
    with Store(out, "w") as store:
        _check_store_config(store, config)
        if retry_failed:
            summary.retried = store.delete_failed(None if retry_failed is True else list(retry_failed))
        exported = frozenset()
        if skip_in:
            exported, failed = finished_in_files(skip_in, config, retry_failed)
            hosts = [h for h in hosts if h.name not in failed or h.name in in_store]
        pipeline = _Pipeline(store, config, hosts, progress, exported)
        if pipeline.skip:  # the store's exports count these as done (dataset export: incomplete_hosts)
            known = store.get_meta("skipped_in_files") or {}
            store.set_meta(skipped_in_files=known | {h: sorted(set(known.get(h, ())) | i) for h, i in pipeline.skip.items()})
        if pipeline.plan() == 0 and not pipeline.queue:
            pipeline.fill(summary)
            summary.wall_s = time.perf_counter() - t0
            return summary  # nothing to do: no cluster, no run row
        cm = existing_client(client) if client is not None else dask_client(workers, scheduler, processes=processes)
        with cm as (cl, label):
            cl.register_plugin(DefectnetWorkerSetup(config.potential, load=get_tier(config.tier).needs_calculator))
            summary.workers = label
            summary.startup_s = time.perf_counter() - t0
            run_id = store.start_run(workers=label, code_version=package_version(), config=config.to_dict())
            status = "failed"
            try:
                pipeline.run(cl)
                status = "finished"
            except KeyboardInterrupt:
                status = "interrupted"
                raise
            finally:
                pipeline.fill(summary)
                summary.wall_s = time.perf_counter() - t0
                store.finish_run(run_id, status, summary.to_dict())
    return summary
