"""Worker side of dataset generation: the pristine, patch and samples tasks.

Each task returns finished store rows with their arrays already compressed (a failure is
a row with its reason, never an exception), times its stages and force calls, and enforces
``task_timeout_s``. A worker process keeps its calculator and its recently used hosts in
this module's state; :class:`DefectnetWorkerSetup` loads the potential once per worker.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from distributed.diagnostics.plugin import WorkerPlugin

from defectnet.data.blobs import cache_patches, pack_patch, pack_pristine, unpack_pristine
from defectnet.data.config import GenerateConfig
from defectnet.data.plan import HostInput, SampleJob
from defectnet.elements import atomic_fractions
from defectnet.errors import DefectnetError
from defectnet.phonons.forceconstants import TierSettings
from defectnet.phonons.patches import UnstablePatch
from defectnet.phonons.tiers import get_tier


class TaskTimeout(Exception):
    """The task ran past ``task_timeout_s`` (raised at the next force call or stage)."""


class PotentialError(Exception):
    """The interatomic potential raised (unsupported element, model failure, ...)."""


class TaskFailure(Exception):
    """A physics check failed; ``reason`` is the short label stored in the row."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


#: Exception type -> failure reason stored in the row (first isinstance match wins).
FAILURE_REASONS: tuple[tuple[type, str], ...] = (
    (TaskTimeout, "timeout"),
    (UnstablePatch, "unstable_patch"),
    (PotentialError, "potential_error"),
    (MemoryError, "out_of_memory"),
    (np.linalg.LinAlgError, "linalg_error"),
    (DefectnetError, "invalid_input"),
)


def failure_reason(exc: BaseException) -> tuple[str, str]:
    """(reason, one-line message) of an exception raised by a task."""
    if isinstance(exc, TaskFailure):
        return exc.reason, one_line(exc)
    for kind, reason in FAILURE_REASONS:
        if isinstance(exc, kind):
            return reason, one_line(exc)
    return "error", f"{type(exc).__name__}: {one_line(exc)}"


def one_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


class _ForceProbe:
    """Wraps a calculator's ``calculate``: times every force call and enforces the task deadline.

    Installed once per worker process on the potential's cached calculator, so force calls
    made deep inside the engine (relaxation, phonopy displacements, patches) are timed and
    can be interrupted without the engine knowing.
    """

    def __init__(self, calc):
        self.durations: list[float] = []
        self.deadline: float | None = None
        original = calc.calculate

        def calculate(*args, **kwargs):
            self.check()
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            except (TaskTimeout, PotentialError):
                raise
            except Exception as exc:  # anything the model raises is the potential's failure
                raise PotentialError(f"{type(exc).__name__}: {one_line(exc)}") from exc
            finally:
                self.durations.append(time.perf_counter() - t0)

        calc.calculate = calculate

    def start(self, timeout_s: float | None):
        self.durations.clear()
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def check(self):
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TaskTimeout("task exceeded task_timeout_s")


class _NoProbe:
    """Deadline checks without a calculator (the mass tier makes no force calls)."""

    durations: tuple = ()

    def start(self, timeout_s):
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def check(self):
        if getattr(self, "deadline", None) is not None and time.monotonic() > self.deadline:
            raise TaskTimeout("task exceeded task_timeout_s")


def _calculator(potential: str):
    """The worker's calculator (loaded once per process) and its force probe."""
    from defectnet.phonons.potentials import get_calculator

    calc = get_calculator(potential)
    probe = calc.__dict__.get("_defectnet_probe")
    if probe is None:
        probe = _ForceProbe(calc)
        calc._defectnet_probe = probe
    return calc, probe


@contextmanager
def _task_row(row: dict, probe, timeout_s, timer=None):
    """Run a task's body for ``row``: an exception becomes the row's failure and reason.

    The deadline runs while the body does; timings (of ``timer``, a new one by default)
    and the creation time are always set.
    """
    timer = timer if timer is not None else _Timer(probe)
    probe.start(timeout_s)
    try:
        yield timer
    except Exception as exc:  # every failure becomes a row with its reason
        reason, msg = failure_reason(exc)
        row.update(status="failed", reason=reason, error=msg)
    finally:
        probe.start(None)
        row["timings"] = timer.done()
        row["created"] = time.time()


class _Timer:
    """Accumulates wall time per stage, and the force-call time spent inside each stage."""

    def __init__(self, probe):
        self.probe = probe
        self.t: dict[str, float] = {}
        self.t0 = time.perf_counter()
        self.cpu0 = time.process_time()

    @contextmanager
    def __call__(self, stage: str):
        t0, n0 = time.perf_counter(), len(self.probe.durations)
        try:
            yield
        finally:
            self._add(f"{stage}_s", time.perf_counter() - t0)
            calls = self.probe.durations[n0:]
            if calls:
                self._add(f"{stage}_force_s", float(sum(calls)))
                self._add(f"{stage}_force_calls", len(calls))

    def _add(self, key, value):
        self.t[key] = self.t.get(key, 0) + value

    def done(self) -> dict:
        self.t["total_s"] = time.perf_counter() - self.t0
        # CPU time of the worker process: total_s / cpu_s > 1 means the core was shared.
        self.t["cpu_s"] = time.process_time() - self.cpu0
        return self.t


#: Serialises tasks within a worker process: the cached calculator is not thread-safe, and
#: a worker started with several threads would otherwise share it.
_TASK_LOCK = threading.Lock()
_WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


def package_version() -> str:
    import defectnet

    return defectnet.__version__


# ------------------------------------------------------------------------ pristine hosts
def _from_host_library_build(host: HostInput, config: GenerateConfig):
    """Hook: a pristine host already computed by the host-library build, if it offers one.

    ``defectnet.hosts.build.load_pristine(name, settings, *, grid, **broadening)`` should
    return a :class:`~defectnet.phonons.host.PristineHost` computed with exactly these
    host settings (potential, tolerances, FC supercell), grid and broadening — or None.
    """
    try:
        from defectnet.hosts import build
    except ImportError:
        return None
    load = getattr(build, "load_pristine", None)
    if load is None:
        return None
    return load(host.name, config.host, grid=config.grid, **config.broadening.kwargs())


#: Where a pristine-host task looks before computing: f(host, config) -> PristineHost | None,
#: tried in order. (The store itself is checked by the client: a stored host is never sent out.)
PRISTINE_SOURCES: list[Callable] = [_from_host_library_build]


def pristine_task(host: HostInput, config: GenerateConfig) -> dict:
    """Worker task: relax ``host``, force constants, q-mesh PDoS, pristine supercell spectra.

    Returns a ``hosts``-table row; a failure is a row with ``status='failed'`` and its
    reason, never an exception.
    """
    from defectnet.data.store import pack_arrays
    from defectnet.doping import choose_supercell
    from defectnet.phonons.dos import gamma_spectrum
    from defectnet.phonons.host import compute_pristine

    with _TASK_LOCK:
        _, probe = _calculator(config.potential)  # compute_pristine gets the same cached calculator
        row = {"name": host.name, "worker": _WORKER_NAME, "code_version": package_version()}
        with _task_row(row, probe, config.task_timeout_s) as timer:
            ph = None
            for source in PRISTINE_SOURCES:
                try:
                    ph = source(host, config)
                except Exception as exc:  # a broken cache must not fail the host: compute instead
                    timer.t["source_error"] = f"{getattr(source, '__name__', source)}: {one_line(exc)}"
                if ph is not None:
                    timer.t["source"] = getattr(source, "__name__", str(source))
                    break
            if ph is None:
                with timer("pristine"):
                    ph = compute_pristine(host.atoms, config.host, grid=config.grid, **config.broadening.kwargs())
                for k in ("relax_s", "force_constants_s", "mesh_dos_s", "n_displacements"):
                    if k in ph.timings:
                        timer.t[f"host_{k}"] = ph.timings[k]
            row.update(n_atoms=len(ph.atoms), fc_supercell_atoms=len(ph.phonon.supercell),
                       n_imaginary=int(ph.n_imaginary), min_frequency_mev=float(ph.min_frequency_mev))
            summary = ph.relax_summary or {}
            if config.host.relax and summary and not summary.get("converged", True):
                raise TaskFailure("no_convergence", f"host relaxation did not converge to {config.host.fmax_ev_ang} eV/Å "
                                  f"in {summary.get('steps')} steps (residual {summary.get('fmax_ev_ang', float('nan')):.3g} eV/Å)")
            if ph.min_frequency_mev < -config.max_imaginary_mev:
                raise TaskFailure("imaginary_modes", f"{ph.n_imaginary} q-mesh modes below -{config.host.imaginary_tol_mev} meV, "
                                  f"lowest {ph.min_frequency_mev:.2f} meV < -{config.max_imaginary_mev:g} meV")
            with timer("supercell"):
                P = choose_supercell(ph.atoms, config.supercell_atoms)
                blob = pack_pristine(ph, P)
                # Everything downstream is computed from the blob, so a host restored from
                # the store gives bit-identical spectra to the one computed in this run.
                ctx = _context(host.name, blob, config)
            probe.check()
            with timer("diagonalise"):
                pristine, _ = gamma_spectrum(ctx.fc0, ctx.sc_atoms, config.grid, **config.broadening.kwargs())
            if pristine.meta["min_frequency_mev"] < -config.max_imaginary_mev:
                raise TaskFailure("imaginary_modes", f"pristine supercell has {pristine.meta['n_imaginary']} imaginary "
                                  f"modes at Γ, lowest {pristine.meta['min_frequency_mev']:.2f} meV")
            gpdos = pristine.neutron_weighted(atomic_fractions(ctx.sc_atoms.get_chemical_symbols()))
            with timer("pack"):
                els = sorted(pristine.partials)
                spectra = pack_arrays(
                    pristine=pristine.values.astype(np.float32), pristine_gpdos=gpdos.values.astype(np.float32),
                    host_pdos=ph.spectrum.values.astype(np.float32) if ph.spectrum is not None else np.zeros(0, np.float32),
                    partial_elements=np.array(els), partials=np.array([pristine.partials[e] for e in els], np.float32),
                )
            row.update(status="ok", pristine=blob, spectra=spectra, supercell_atoms=len(ctx.sc_atoms))
        return row


# ------------------------------------------------------------------------ worker host contexts
@dataclass
class _HostContext:
    host: object  # PristineHost (patches cached on it)
    supercell_matrix: np.ndarray
    sc_atoms: Atoms | None = None  # pristine doped-size supercell
    fc0: np.ndarray | None = None  # its force constants (N, N, 3, 3), eV/Å²
    patch_digests: set = field(default_factory=set)


#: Hosts recently used by this worker process: rebuilding one costs a phonopy set-up and
#: a Fourier interpolation, so tasks of the same host landing here reuse it.
_CONTEXTS: OrderedDict = OrderedDict()
_MAX_CONTEXTS = 2


def _context(name: str, blob: bytes, config: GenerateConfig, *, supercell: bool = True) -> _HostContext:
    from defectnet.phonons.forceconstants import pristine_supercell

    key = (name, hashlib.blake2b(blob, digest_size=16).digest(), config.identity_hash())
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        host, P = unpack_pristine(blob, config.host)
        ctx = _HostContext(host, P)
        _CONTEXTS[key] = ctx
        while len(_CONTEXTS) > _MAX_CONTEXTS:
            _CONTEXTS.popitem(last=False)
    _CONTEXTS.move_to_end(key)
    if supercell and ctx.fc0 is None:
        ctx.sc_atoms, ctx.fc0 = pristine_supercell(ctx.host, ctx.supercell_matrix)
    return ctx


def _add_patches(ctx: _HostContext, blobs, settings: TierSettings):
    for blob in blobs:
        digest = hashlib.blake2b(blob, digest_size=16).digest()
        if digest in ctx.patch_digests:
            continue
        cache_patches(ctx.host, [blob], settings)
        ctx.patch_digests.add(digest)


def patch_task(name: str, pristine_blob: bytes, site: int, element: str, config: GenerateConfig) -> dict:
    """Worker task: the force-constant patch of ``element`` on primitive site ``site``.

    Returns a ``patches``-table row (``status='failed'`` with a reason on failure).
    """
    from defectnet.phonons.patches import get_patch

    with _TASK_LOCK:
        calc, probe = _calculator(config.potential)
        row = {"site": int(site), "element": element, "worker": _WORKER_NAME, "code_version": package_version()}
        with _task_row(row, probe, config.task_timeout_s) as timer:
            with timer("context"):
                ctx = _context(name, pristine_blob, config, supercell=False)
            with timer("patch"):  # inside: relax_s, displace_s and their force-call time and counts
                patch, _ = get_patch(ctx.host, int(site), element, calc, config.tier_settings, stage=timer)
            with timer("pack"):
                data = pack_patch(patch)
            row.update(status="ok", force_calls=int(patch.force_calls), data=data)
        return row


def samples_task(name: str, prototype: str, pristine_blob: bytes, patch_blobs: list, jobs: list[SampleJob],
                 config: GenerateConfig) -> list[dict]:
    """Worker task: the doped samples ``jobs`` of one host; returns ``samples``-table rows.

    Each sample fails or succeeds on its own (a failure is a row with its reason).
    """
    from defectnet.phonons.potentials import potential_info

    with _TASK_LOCK:
        needs_calc = get_tier(config.tier).needs_calculator
        calc, probe = _calculator(config.potential) if needs_calc else (None, _NoProbe())
        potential = potential_info(config.potential)
        rows = []
        setup = _Timer(probe)
        setup_error = None
        try:
            probe.start(config.task_timeout_s)
            with setup("context"):
                ctx = _context(name, pristine_blob, config)
                _add_patches(ctx, patch_blobs, config.tier_settings)
        except Exception as exc:  # the host cannot be rebuilt: every sample fails with that reason
            setup_error = failure_reason(exc)
        for k, job in enumerate(jobs):
            row = {
                "host": name, "prototype": prototype, "sample_index": job.index, "seed": job.seed,
                "n_dopants": len(job.dopants), "candidates": list(job.candidates),
                "distractors": list(job.distractors), "tier": config.tier, "potential": potential.name,
                "grid_id": config.grid.grid_id, "worker": _WORKER_NAME, "code_version": package_version(),
                "dopants": [[el, site, float(frac), None] for el, site, frac in job.dopants],
            }
            timer = _Timer(probe)
            if k == 0:  # the set-up is paid by (and timed in) the task's first sample
                timer.t.update(setup.t)
                timer.t0, timer.cpu0 = setup.t0, setup.cpu0
            with _task_row(row, probe, config.task_timeout_s, timer):
                if setup_error:
                    raise TaskFailure(*setup_error)
                _one_sample(ctx, job, config, calc, probe, timer, row)
            rows.append(row)
        return rows


def _one_sample(ctx: _HostContext, job: SampleJob, config: GenerateConfig, calc, probe, timer, row):
    from defectnet.data.store import pack_arrays
    from defectnet.doping import DopantSpec
    from defectnet.host import placed_spectrum

    specs = [DopantSpec(el, site, frac) for el, site, frac in job.dopants]
    limit = config.doped_imaginary_limit_mev
    doped, result, sub, attempts = placed_spectrum(
        ctx.sc_atoms, specs, job.placement_seed, fc0=ctx.fc0, host=ctx.host, calc=calc, tier=config.tier,
        tier_settings=config.tier_settings, grid=config.grid, broadening=config.broadening.kwargs(),
        attempts=config.placement_attempts, max_imaginary_mev=limit, timer=timer, check=probe.check)
    timer.t["placement_attempts"] = attempts
    doped_atoms = result.atoms
    idx = sub.dopant_indices
    n_imag = int(doped.meta.get("n_imaginary", 0))
    row.update(n_imaginary=n_imag, min_frequency_mev=float(doped.meta["min_frequency_mev"]),
               supercell_atoms=len(doped_atoms))
    if doped.meta["min_frequency_mev"] < -limit:
        tried = f" (in each of {config.placement_attempts} placements)" if config.placement_attempts > 1 else ""
        raise TaskFailure("imaginary_modes", f"doped supercell has {n_imag} imaginary modes at Γ{tried}, "
                          f"lowest {doped.meta['min_frequency_mev']:.2f} meV < -{limit:g} meV")
    gpdos = doped.neutron_weighted(atomic_fractions(doped_atoms.get_chemical_symbols()))
    with timer("pack"):
        els = sorted(doped.partials)
        arrays = pack_arrays(
            doped=doped.values.astype(np.float32), doped_gpdos=gpdos.values.astype(np.float32),
            partial_elements=np.array(els), partials=np.array([doped.partials[e] for e in els], np.float32),
            dopant_indices=idx.astype(np.int32),
        )
    counts = sub.counts
    row.update(
        status="ok", arrays=arrays,
        dopants=[[el, site, float(frac), int(counts.get(f"{el}@{site}", 0))] for el, site, frac in job.dopants],
        concentrations={el: float(c) for el, c in sub.concentrations.items()},
        total_concentration=float(sum(sub.concentrations.values())),
    )
    if "force_calls" in result.info:
        timer.t["tier_new_force_calls"] = int(result.info["force_calls"])


# ------------------------------------------------------------------------ worker set-up
def _worker_setup(potential: str, load: bool) -> dict:
    """Per worker process: load the potential once and pin torch to one thread."""
    import warnings

    # phonopy warns on every non-diagonal supercell (our near-cubic doped cells); harmless here.
    warnings.filterwarnings("ignore", message="Point group symmetries of supercell", category=UserWarning)
    t0 = time.perf_counter()
    error = None
    if load:
        try:
            _calculator(potential)
        except Exception as exc:  # tasks will record the failure with its reason
            error = one_line(exc)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    return {"seconds": time.perf_counter() - t0, "error": error}


class DefectnetWorkerSetup(WorkerPlugin):
    """Per worker: load the potential once (so no task pays for it) and pin torch to one thread."""

    name = "defectnet-generate"

    def __init__(self, potential: str, load: bool = True):
        self.potential, self.load = potential, load

    def setup(self, worker):
        worker.defectnet_setup = _worker_setup(self.potential, self.load)
