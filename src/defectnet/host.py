"""The engine object: one host crystal and every spectrum the engine makes of it.

Read it as phonopy's ``Phonopy`` or Euphonic's ``ForceConstants``: a host is loaded, its
expensive state is computed once, on first need, and kept; verbs return domain objects::

    host = Host.load("GaAs", config)           # nothing computed yet
    host.simulate("Si@Ga:0.02")                # relax + force constants (or the disk cache), then spectra
    host.basis(["Si@Ga", "Zn@Ga"])             # signature basis: same force constants, same patches
    host.synthesize({"Si": 0.02, "Zn": 0.01})  # a mix's defect signature Δ, for refine

What it keeps: the relaxed host with its force constants (:class:`~defectnet.phonons.host.PristineHost`,
from :func:`~defectnet.phonons.cache.cached_pristine`, which owns the patch cache), the
doped-cell supercell choice, and that supercell's force constants and pristine spectra.
Every doped spectrum — simulate, basis and synthesis — comes from :meth:`Host.place`, so for
one seed all three place the same dopants, re-placed the same way when a placement is unstable.
"""

from __future__ import annotations

import json
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
from ase import Atoms

from defectnet.signatures import KINDS, BasisConfig, SignatureBasis, build_basis
from defectnet.doping import DopantSpec, Substitution, choose_supercell, parse_dopants, substitute
from defectnet.elements import atomic_fractions
from defectnet.errors import DefectnetError, exception_reason
from defectnet.phonons.forceconstants import DopedSystem, TierResult, pristine_supercell
from defectnet.phonons.tiers import get_tier
from defectnet.simulation import SimulationConfig, SimulationResult, resolve_host

#: What a file written by :meth:`Host.save` says it is.
HOST_FILE_FORMAT = "defectnet-host-1"


@dataclass
class Placement:
    """Dopants placed in the host's supercell, and the spectrum of the doped cell at Γ."""

    doped: object  # Spectrum: total + partial PDoS, unit area, per meV
    tier_result: TierResult  # the doped force constants and the structure they belong to
    substitution: Substitution  # which atoms were replaced, realised concentrations
    attempts: int  # placements made (> 1 when the first ones had imaginary modes)

    def spectrum(self, kind: str = "pdos"):
        """The doped PDoS (``pdos``) or its neutron-weighted GPDoS (``gpdos``), a Spectrum."""
        if kind == "gpdos":
            return self.doped.neutron_weighted(atomic_fractions(self.tier_result.atoms.get_chemical_symbols()))
        return self.doped


class Host:
    """A host crystal with its engine settings; relaxes and computes force constants lazily.

    Parameters
    ----------
    structure : ase.Atoms
        Any cell of the host as given (reduced to its standard primitive cell and relaxed on first need).
    name : str
        What results call the host (a library name or the formula).
    config : SimulationConfig
        Tier, potential, supercell size, broadening, grid, seed and placement of every spectrum.
    pristine : PristineHost, optional
        The relaxed host with its force constants, already at hand (must match ``config``).
    supercell_matrix : array-like (3, 3) of int, optional
        The doped cell; default :func:`~defectnet.doping.choose_supercell` of ``config.supercell_atoms``.
    progress : bool
        Progress bars on stderr.
    """

    def __init__(self, structure: Atoms, name: str, config: SimulationConfig = SimulationConfig(), *,
                 pristine=None, supercell_matrix=None, progress: bool = False):
        self.structure, self.name, self.config, self.progress = structure, name, config, progress
        self._pristine = pristine
        self._supercell_matrix = None if supercell_matrix is None else np.asarray(supercell_matrix, dtype=int)

    def __repr__(self) -> str:
        state = "computed" if self.computed else "not computed yet"
        return f"Host({self.name!r}, tier={self.config.tier!r}, potential={self.config.potential!r}; {state})"

    # ------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, host, config: SimulationConfig | None = None, *, pristine=None, progress: bool = False) -> Host:
        """A host from a library name, a CIF/POSCAR path, an ``ase.Atoms`` or a file of :meth:`save`.

        Nothing is computed here. ``config`` defaults to :class:`SimulationConfig`'s defaults
        (to the saved one for a file of :meth:`save`, which refuses another).
        """
        if isinstance(host, (str, Path)) and Path(host).suffix == ".npz":
            saved = cls._read(Path(host), progress)
            if config is not None and config != saved.config:
                raise DefectnetError("was saved with other settings than those given; load it without a config",
                                     source=str(host))
            return saved
        atoms, name = resolve_host(host)
        return cls(atoms, name, config or SimulationConfig(), pristine=pristine, progress=progress)

    @classmethod
    def from_basis(cls, basis: SignatureBasis) -> Host:
        """The host a basis was simulated with, from the host and patches it keeps (its ``synthesis``)."""
        if not basis.synthesis:
            raise DefectnetError(f"the basis of {basis.host} holds no host and patches to synthesise mixes with: "
                                 "make it again with `defectnet basis` (this version keeps them)")
        config = SimulationConfig.from_dict(basis.config["simulation"])
        syn = basis.synthesis
        return cls._from_blobs(basis.host, config, syn["pristine"], syn["patches"])

    @classmethod
    def _from_blobs(cls, name: str, config: SimulationConfig, pristine: bytes, patches, progress: bool = False) -> Host:
        from defectnet.data.blobs import cache_patches, unpack_pristine

        host, P = unpack_pristine(pristine, config.host)
        cache_patches(host, patches, config.tier_settings)
        return cls(host.atoms, name, config, pristine=host, supercell_matrix=P, progress=progress)

    def save(self, path) -> Path:
        """Write the relaxed host, its force constants and its patches (for ``config.tier_settings``)
        as one ``.npz``, read back by :meth:`load`: the disk cache's blobs, in a file to carry around."""
        path = Path(path)
        if path.suffix != ".npz":
            raise DefectnetError("a saved host is a .npz file", source=str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        blobs = self._blobs()
        header = {"format": HOST_FILE_FORMAT, "name": self.name, "config": self.config.to_dict()}
        np.savez(path, header=json.dumps(header), pristine=np.frombuffer(blobs["pristine"], np.uint8),
                 **{f"patch_{i}": np.frombuffer(b, np.uint8) for i, b in enumerate(blobs["patches"])})
        return path

    @classmethod
    def _read(cls, path: Path, progress: bool) -> Host:
        expected = "expected a .npz written by Host.save"
        if not zipfile.is_zipfile(path):
            raise DefectnetError(f"not a saved host ({expected})", source=str(path))
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
                if header.get("format") != HOST_FILE_FORMAT:
                    raise KeyError("format")
                patches = [z[k].tobytes() for k in sorted((k for k in z.files if k.startswith("patch_")),
                                                          key=lambda k: int(k.split("_")[1]))]
                pristine = z["pristine"].tobytes()
        except (OSError, KeyError, ValueError) as exc:
            raise DefectnetError(f"not a saved host ({expected}; {exception_reason(exc)})", source=str(path)) from None
        return cls._from_blobs(header["name"], SimulationConfig.from_dict(header["config"]), pristine, patches, progress)

    # ------------------------------------------------------------------------- lazy state
    @property
    def computed(self) -> bool:
        """Whether the relaxed host and its force constants are at hand (computed, cached or given)."""
        return self._pristine is not None

    @property
    def pristine(self):
        """The relaxed host with its force constants and patch cache (PristineHost); computed on first use."""
        if self._pristine is None:
            from defectnet.phonons.cache import cached_pristine

            c = self.config
            self._pristine = cached_pristine(self.structure, c.host, grid=c.grid, progress=self.progress,
                                             **c.broadening())
        return self._pristine

    @property
    def supercell_matrix(self) -> np.ndarray:
        """(3, 3) int: the doped cell is ``supercell_matrix @`` the relaxed primitive cell."""
        if self._supercell_matrix is None:
            self._supercell_matrix = choose_supercell(self.pristine.atoms, self.config.supercell_atoms)
        return self._supercell_matrix

    @cached_property
    def _cell(self) -> dict:
        """The pristine doped-size supercell, its force constants (N, N, 3, 3) eV/Å² and Γ spectra."""
        from defectnet.phonons.dos import gamma_spectrum

        atoms, fc0 = pristine_supercell(self.pristine, self.supercell_matrix)
        pdos, _ = gamma_spectrum(fc0, atoms, self.config.grid, **self.config.broadening())
        gpdos = pdos.neutron_weighted(atomic_fractions(atoms.get_chemical_symbols()))
        return {"atoms": atoms, "fc0": fc0, "pdos": pdos, "gpdos": gpdos}

    @property
    def supercell(self) -> Atoms:
        """The pristine supercell every dopant is placed in (unrelaxed lattice positions)."""
        return self._cell["atoms"]

    def pristine_spectrum(self, kind: str = "pdos"):
        """The pristine supercell's PDoS (``pdos``) or GPDoS (``gpdos``) at Γ: a unit-area Spectrum, per meV."""
        if kind not in KINDS:
            raise DefectnetError(f"kind must be one of {KINDS}, got {kind!r}")
        return self._cell[kind]

    # ------------------------------------------------------------------------- verbs
    def place(self, dopants, seed: int | None = None, *, tier: str | None = None, timer=None, check=None,
              progress: bool = False) -> Placement:
        """Dopants placed in :attr:`supercell` with ``seed`` (default ``config.seed``) and the doped spectrum.

        The one placement routine of the host (:func:`placed_spectrum`): a placement whose
        lowest Γ mode is below −``config.max_imaginary_mev`` is placed again, up to
        ``config.placement_attempts`` placements. ``dopants``: a spec string or DopantSpecs;
        ``timer``, ``check``, ``progress``: as for :func:`placed_spectrum`.
        """
        config = replace(self.config, tier=tier or self.config.tier)
        specs = parse_dopants(dopants) if isinstance(dopants, str) else list(dopants)
        seed = config.seed if seed is None else seed
        doped, result, sub, attempts = placed_spectrum(
            self.supercell, specs, seed, fc0=self._cell["fc0"], host=self.pristine, calc=_calculator(config),
            tier=config.tier, tier_settings=config.tier_settings, grid=config.grid, broadening=config.broadening(),
            attempts=config.placement_attempts, max_imaginary_mev=config.max_imaginary_mev, timer=timer,
            check=check, progress=progress)
        return Placement(doped, result, sub, attempts)

    def simulate(self, dopants, *, tier: str | None = None, seed: int | None = None) -> SimulationResult:
        """Pristine and doped PDoS/GPDoS of the host with ``dopants`` (``"Si@Ga:0.02,Zn@Ga:0.005"``).

        ``tier`` and ``seed`` default to the config's. Returns a :class:`SimulationResult`.
        """
        import defectnet
        from defectnet.phonons.host import with_mesh_spectrum
        from defectnet.phonons.potentials import potential_info
        from defectnet.provenance import library_versions

        t_start = time.perf_counter()
        config = replace(self.config, tier=tier or self.config.tier, seed=self.config.seed if seed is None else seed)
        specs = parse_dopants(dopants) if isinstance(dopants, str) else list(dopants)  # fail before minutes of work
        stages = _Stages(self.progress)
        with stages("relaxing host and computing its force constants"):
            host = self.pristine
            if host.spectrum is None:  # a host read from blobs: its q-mesh PDoS is made here
                with_mesh_spectrum(host, grid=config.grid, **config.broadening())
        with stages(f"building a {len(host.atoms) * round(abs(np.linalg.det(self.supercell_matrix)))}-atom supercell"):
            pristine, pristine_gpdos = self.pristine_spectrum("pdos"), self.pristine_spectrum("gpdos")
        placed = self.place(specs, config.seed, tier=config.tier, timer=stages, progress=self.progress)
        stages.close()
        result, sub = placed.tier_result, placed.substitution
        doped = placed.doped
        meta = {
            "host": self.name,
            "host_formula": host.atoms.get_chemical_formula(mode="metal"),
            "potential": potential_info(config.potential).to_dict(),
            "tier": config.tier,
            "supercell_matrix": self.supercell_matrix.tolist(),
            "supercell_atoms": len(self.supercell),
            "dopants": sub.to_dict(),
            "concentrations": sub.concentrations,  # per dopant element, atomic fraction
            "placement_attempts": placed.attempts,
            "host_n_imaginary_qmesh": host.n_imaginary,
            "host_min_frequency_mev": host.min_frequency_mev,
            "doped_n_imaginary": doped.meta.get("n_imaginary", 0),
            "doped_min_frequency_mev": doped.meta.get("min_frequency_mev"),
            "tier_info": result.info,
            "timings_s": {**host.timings, "tier": stages.seconds.get("tier", 0.0),
                          "dos": stages.seconds.get("diagonalise", 0.0), "total": time.perf_counter() - t_start},
            "grid_id": config.grid.grid_id,
            "seed": config.seed,
            "versions": library_versions(),
            "defectnet_version": defectnet.__version__,
        }
        return SimulationResult(pristine=pristine, doped=doped, pristine_gpdos=pristine_gpdos,
                                doped_gpdos=placed.spectrum("gpdos"), host_spectrum=host.spectrum, host_atoms=host.atoms,
                                doped_atoms=self._relaxed_structure(placed, config), config=config, meta=meta)

    def basis(self, candidates, concentrations=(0.01, 0.05, 0.15), *, placements: int = 1, checkpoint=None,
              synthesis: bool = True, workers: int = 1) -> SignatureBasis:
        """Each candidate's signature alone at ``concentrations`` (atomic fractions), ``placements`` seeds each.

        ``candidates``: ``"Si"`` (site chosen as the simulator does) or ``"Si@Ga"``. See
        :func:`defectnet.unmix.signature_basis` for ``checkpoint``, ``synthesis`` and ``workers``.
        """
        config = BasisConfig(concentrations=concentrations, placements=placements, simulation=self.config)
        return build_basis(self, candidates, config, checkpoint=checkpoint, progress=self.progress,
                           synthesis=synthesis, workers=workers)

    def compute_patches(self, specs, workers: int = 1) -> dict:
        """Compute each dopant's force-constant patches, ``workers`` processes at once, into the disk cache.

        One patch per (symmetry-distinct primitive site of the dopant's sublattice, element) not
        cached yet; :meth:`place` then reads them from the cache. Worth it for several candidates
        (each patch is a relaxation and its displacements): the processes share nothing but the
        cache. Nothing is done (everything is left to :meth:`place`) for no specs, one worker, a
        tier without patches, or the disk cache off (workers could not hand patches over); a patch
        whose worker failed for another reason than an unstable dopant is left to :meth:`place` too.

        Parameters
        ----------
        specs : list of DopantSpec
            The dopants (their ``site`` None = chosen as the simulator does).
        workers : int
            Processes, each with one thread.

        Returns
        -------
        dict
            {element: reason} for the dopants unstable on every distinct site of their sublattice
            (any placement of them would fail).
        """
        if not specs or workers < 2 or not get_tier(self.config.tier).uses_patches or \
                self.pristine.disk_cache is None:
            return {}
        jobs = self._patch_jobs(specs)
        if len(jobs) < 2:
            return {}
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        n, unstable = min(workers, len(jobs)), {}
        with _single_threaded_children(), \
                ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_patch_job, self.structure, self.name, self.config.to_dict(), *job): job
                       for job in jobs}
            done = as_completed(futures)
            if self.progress:
                from tqdm.auto import tqdm

                done = tqdm(done, total=len(futures), desc=f"patches ({n} processes)", unit="patch")
            for f in done:
                try:
                    why = f.result()
                except Exception:  # a crashed worker (memory, ...): place() computes that patch itself
                    continue
                if why:
                    unstable[futures[f]] = why
        elements = {el for _, el in jobs}
        return {el: next(w for (_, e), w in unstable.items() if e == el) for el in elements
                if all((site, e) in unstable for site, e in jobs if e == el)}

    def _patch_jobs(self, specs) -> list[tuple[int, str]]:
        """(representative primitive site, element) of every patch ``specs`` need that no cache holds."""
        from defectnet.doping import auto_site
        from defectnet.phonons.symmetry import HostSymmetry

        prim, settings = self.pristine, self.config.tier_settings
        symbols = prim.atoms.get_chemical_symbols()
        symmetry = HostSymmetry(prim.atoms, prim.settings.symprec)
        jobs = {}
        for s in specs:
            species = s.site or auto_site(s.element, sorted(set(symbols)))
            for i in (i for i, sym in enumerate(symbols) if sym == species):
                site = symmetry.equivalent_site(i)[0]
                if (site, s.element, settings) not in prim.patch_cache and \
                        prim.disk_cache.load_patch(site, s.element, settings) is None:
                    jobs[(site, s.element)] = None
        return list(jobs)

    def synthesize(self, concentrations: dict, *, sites: dict | None = None, kind: str = "gpdos",
                   seed: int = 0) -> np.ndarray:
        """The defect signature Δ = doped − pristine (B,), per meV, of a mix ``{element: atomic fraction}``.

        Each element goes on ``sites[element]`` (default: chosen as the simulator does), placed
        with ``seed``; an element of less than half an atom in the supercell is left out.
        """
        sites = sites or {}
        n = len(self.supercell)
        specs = [DopantSpec(el, sites.get(el), float(c)) for el, c in concentrations.items() if c * n >= 0.5]
        pristine = self.pristine_spectrum(kind).values
        if not specs:  # less than half an atom of every element: the pristine cell
            return np.zeros_like(pristine)
        return self.place(specs, seed).spectrum(kind).values - pristine

    def synthesis_record(self, sites: dict) -> dict:
        """What :meth:`from_basis` rebuilds this host from, for the elements of ``sites`` ({element: site or None}):
        the relaxed host and their patches as blobs, and the supercell matrix."""
        return {"sites": dict(sites), "supercell_matrix": self.supercell_matrix, **self._blobs(set(sites))}

    def _blobs(self, elements=None) -> dict:
        from defectnet.data.blobs import pack_patch, pack_pristine

        patches = [p for (_, el, settings), p in self.pristine.patch_cache.items()
                   if (elements is None or el in elements) and settings == self.config.tier_settings]
        return {"pristine": pack_pristine(self.pristine, self.supercell_matrix),
                "patches": [pack_patch(p) for p in patches]}

    def _relaxed_structure(self, placed: Placement, config: SimulationConfig) -> Atoms:
        """The doped cell as written out: the tier's structure, with the patches' relaxation for ``patch``."""
        from defectnet.phonons.forceconstants import primitive_site_indices
        from defectnet.phonons.patches import displaced_positions

        atoms = placed.tier_result.atoms
        if not get_tier(config.tier).uses_patches:
            return atoms
        patches = {(site, el): p for (site, el, s), p in self.pristine.patch_cache.items() if s == config.tier_settings}
        site_of = primitive_site_indices(self.pristine, atoms)
        out = atoms.copy()
        try:
            out.positions = displaced_positions(atoms, placed.substitution.dopant_indices, site_of, patches)
        except (KeyError, DefectnetError):
            pass  # keep lattice positions if a patch is not at hand
        return out


@contextmanager
def _single_threaded_children():
    """Worker processes started inside see one BLAS/OpenMP thread each (read when they import numpy)."""
    import os

    from defectnet.output import SINGLE_THREAD_ENV

    old = {k: os.environ.get(k) for k in SINGLE_THREAD_ENV}
    os.environ.update(SINGLE_THREAD_ENV)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _patch_job(structure: Atoms, name: str, config: dict, site: int, element: str) -> str | None:
    """One patch into the disk cache, in a worker process of :meth:`Host.compute_patches`; why not, if unstable."""
    import torch

    from defectnet.phonons.patches import UnstablePatch, get_patch

    torch.set_num_threads(1)  # the workers are the parallelism
    cfg = SimulationConfig.from_dict(config)
    try:
        get_patch(Host(structure, name, cfg).pristine, site, element, _calculator(cfg), cfg.tier_settings)
    except UnstablePatch as exc:
        return str(exc)
    return None


def _calculator(config: SimulationConfig):
    """The potential's calculator, loaded when a force call is first needed (cached patches need none),
    or None for a tier that makes no force call."""
    from defectnet.phonons.potentials import DeferredCalculator

    return DeferredCalculator(config.potential) if get_tier(config.tier).needs_calculator else None


def placed_spectrum(sc, specs, seed: int, *, fc0, host, calc, tier: str, tier_settings, grid, broadening: dict,
                    attempts: int = 3, max_imaginary_mev: float = 5.0, timer=None, check=None, progress: bool = False):
    """Dopants ``specs`` placed in supercell ``sc`` and its Γ-point spectrum, as the dataset places them.

    Attempt 0 places with ``default_rng(seed)`` (what every stored sample used), attempt a with
    ``default_rng([seed, a])``; placing stops at the first whose lowest Γ mode is ≥
    −``max_imaginary_mev`` (meV), or after ``attempts``.

    Parameters
    ----------
    sc : ase.Atoms
        The pristine supercell; ``fc0`` its force constants, ``host`` the relaxed host (patch cache), ``calc``
        the potential (None for the mass tier).
    timer : callable, optional
        ``timer(stage)`` gives a context manager around each stage (``substitute``, ``tier``, ``diagonalise``).
    check : callable, optional
        Called after each tier call (a generation task's timeout probe).
    progress : bool
        Progress bars of the tier's force calls.

    Returns
    -------
    (Spectrum, TierResult, Substitution, int)
        The doped spectrum (unit area, per meV, not yet neutron-weighted), the tier's result, the
        substitution and the number of attempts made.
    """
    from contextlib import nullcontext

    from defectnet.phonons.dos import gamma_spectrum

    stage = timer or (lambda name: nullcontext())
    strategy = get_tier(tier)
    for attempt in range(attempts):
        with stage("substitute"):
            atoms, sub = substitute(sc, specs, np.random.default_rng(seed if attempt == 0 else [seed, attempt]))
        with stage("tier"):
            res = strategy(DopedSystem(atoms, sub.dopant_indices, fc0, host, calc, progress), tier_settings)
        if check is not None:
            check()
        with stage("diagonalise"):
            doped, _ = gamma_spectrum(res.fc, res.atoms, grid, **broadening)
        if doped.meta["min_frequency_mev"] >= -max_imaginary_mev:
            break
    return doped, res, sub, attempt + 1


class _Stages:
    """A one-line progress display of a simulation's stages (stderr), timing each stage."""

    LABELS = {"substitute": "placing dopants", "tier": "doped force constants",
              "diagonalise": "diagonalising and broadening"}

    def __init__(self, enabled: bool):
        self.enabled, self.bar, self.seconds = enabled, None, {}

    @contextmanager
    def __call__(self, stage: str):
        if self.enabled:
            from tqdm.auto import tqdm

            if self.bar is None:
                self.bar = tqdm(total=None, bar_format="{desc} [{elapsed}]", leave=False)
            self.bar.set_description_str(self.LABELS.get(stage, stage))
            self.bar.refresh()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0

    def close(self):
        if self.bar is not None:
            self.bar.close()
