"""Dataset generation: the config, the per-host plan, the worker tasks and the Dask pipeline.

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

import hashlib
import json
import os
import socket
import sys
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from ase import Atoms
from distributed.diagnostics.plugin import WorkerPlugin

from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID, EnergyGrid
from defectnet.phonons.forceconstants import TierSettings
from defectnet.phonons.host import HostSettings

# ============================================================================ config


@dataclass(frozen=True)
class HostSelection:
    """Which hosts to generate; the union of every way given, in this order, without repeats.

    Attributes
    ----------
    names : tuple of str
        Library names or aliases (``Si``, ``GaN-wurtzite``) — see ``defectnet hosts list``.
    filter : str or None
        A host-library filter expression (``"element=Ga arity=2 stable"``).
    all : bool
        Every library host.
    files : tuple of str
        CIF/POSCAR paths; the host is named after the file stem.
    structures : dict
        Inline structures, name → ``{"cell": 3×3 Å, "species": [...], "positions":
        fractional}`` (:meth:`from_atoms` builds it from ``ase.Atoms``).
    exclude : tuple of str
        Names to leave out.
    exclude_from : tuple of str
        Training files or directories of them (e.g. the committed reference-dataset chunks):
        their hosts, and the hosts they record as failed, are left out — so a generation
        continued in a new session with a fresh store computes only new hosts.
    max_hosts : int or None
        Keep only the first ``max_hosts`` hosts.
    """

    names: tuple[str, ...] = ()
    filter: str | None = None
    all: bool = False
    files: tuple[str, ...] = ()
    structures: Mapping = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    exclude_from: tuple[str, ...] = ()
    max_hosts: int | None = None

    @staticmethod
    def from_atoms(structures: Mapping[str, Atoms], **kw) -> HostSelection:
        """Hosts given as ``{name: ase.Atoms}`` (stored inline in the config)."""
        return HostSelection(structures={n: _atoms_to_dict(a) for n, a in structures.items()}, **kw)

    def is_empty(self) -> bool:
        return not (self.names or self.filter or self.all or self.files or self.structures)


POOL_CHOICES = ("random", "best")


@dataclass(frozen=True)
class SamplerSettings:
    """How doped samples are drawn for a host (see :mod:`defectnet.sampling`).

    Attributes
    ----------
    n_dopants : (int, int)
        Distinct dopant species per sample.
    conc_range : (float, float)
        Atomic fraction of the supercell per species, drawn log-uniform.
    max_total : float
        Upper bound of the summed dopant fraction.
    n_distractors : (int, int)
        Recommended-but-absent elements added to the candidates.
    dopant_pool : int
        True dopants of a host come from a pool of ``dopant_pool`` of its recommended
        elements (bounds the number of force-constant patches per host); distractors come
        from all its recommendations.
    pool_choice : str
        ``"random"`` (default): the pool is drawn, seeded per host, from the recommended
        elements with probability ∝ score. ``"best"``: the best-scored ones. With "best",
        the top-ranked elements of similar hosts are always the true dopants and the
        lower-ranked ones always distractors, so a model can learn the ranking instead of
        reading the spectrum — a shortcut that fails on real samples.
    n_recommend : int
        Recommender records per host.
    vocabulary : tuple of str or None
        Restrict dopants (and distractors) to these elements (default: the full dopant vocabulary).
    """

    n_dopants: tuple[int, int] = (1, 4)
    conc_range: tuple[float, float] = (0.002, 0.1)  # atomic fraction of the supercell
    max_total: float = 0.25  # atomic fraction of the supercell
    n_distractors: tuple[int, int] = (1, 4)
    dopant_pool: int = 6
    pool_choice: str = "random"
    n_recommend: int = 20
    vocabulary: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.pool_choice not in POOL_CHOICES:
            raise DefectnetError(f"sampler.pool_choice must be one of {', '.join(POOL_CHOICES)}, got {self.pool_choice!r}")


@dataclass(frozen=True)
class Broadening:
    """Exactly one of a constant Gaussian FWHM (meV) or an instrument-resolution preset."""

    fwhm_mev: float | None = 1.0
    resolution: str | None = None

    def __post_init__(self):
        if (self.fwhm_mev is None) == (self.resolution is None):
            raise DefectnetError("broadening: give exactly one of fwhm_mev or resolution")
        if self.fwhm_mev is not None and not self.fwhm_mev > 0:
            raise DefectnetError(f"broadening.fwhm_mev must be > 0 meV, got {self.fwhm_mev}")
        if self.resolution is not None:
            from defectnet.resolution import get_resolution

            get_resolution(self.resolution)

    def kwargs(self) -> dict:
        """Keyword arguments of the spectra engine (``fwhm_mev=`` or ``resolution=``)."""
        return {"resolution": self.resolution} if self.resolution else {"fwhm_mev": self.fwhm_mev}

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


#: Config keys that may change between runs on one store: they say how much to do, not how
#: a row is computed. Every other key is part of the store's identity and must match.
EXTENT_KEYS = ("hosts", "samples_per_host", "samples_per_task", "task_timeout_s")


@dataclass(frozen=True)
class GenerateConfig:
    """Everything that determines a generated dataset; saved in the store.

    Attributes
    ----------
    hosts : HostSelection
    samples_per_host : int
        Doped samples per host (a later run may raise it; existing rows are kept).
    samples_per_task : int
        Samples computed by one task (one store transaction).
    potential : str
        Registry name (``sevennet``, ``chgnet``, ``emt``); recorded with its version.
    tier : str
        Fidelity tier: ``patch`` (default), ``mass``, ``local``, ``full``.
    supercell_atoms : int or (int, int)
        Doped supercell size (atoms).
    seed : int
        Root seed of every random draw.
    grid : EnergyGrid
    broadening : Broadening
    sampler : SamplerSettings
    host : HostSettings
        Relaxation and force-constant settings of the pristine host (``host_settings`` in YAML).
    tier_settings : TierSettings
    max_imaginary_mev : float
        A host (q-mesh or supercell at Γ) or a doped cell whose lowest mode lies below
        ``-max_imaginary_mev`` fails with ``imaginary_modes`` — the host-library build's
        criterion of dynamical stability; the tolerance absorbs the near-Γ noise of MLIP
        force constants. Modes in between are counted in ``n_imaginary`` and left out of
        the spectrum, never folded in.
    max_doped_imaginary_mev : float or None
        The same criterion for doped cells (``None`` = ``max_imaginary_mev``). Patch-tier
        cells with 10–25 % dopants get a few modes at -1 to -4 meV where patches of
        neighbouring dopants overlap (superposition error, not a physical instability);
        a looser bound here keeps high concentrations in the data.
    task_timeout_s : float
        Limit of one pristine/patch task or one sample, s (checked at every force call).
    """

    hosts: HostSelection = HostSelection()
    samples_per_host: int = 16
    samples_per_task: int = 4
    potential: str = "sevennet"
    tier: str = "patch"
    supercell_atoms: tuple[int, int] | int = (433, 500)
    seed: int = 0
    grid: EnergyGrid = DEFAULT_GRID
    broadening: Broadening = Broadening()
    sampler: SamplerSettings = SamplerSettings()
    host: HostSettings = HostSettings()
    tier_settings: TierSettings = TierSettings()
    max_imaginary_mev: float = 1.0  # meV
    max_doped_imaginary_mev: float | None = None  # meV
    task_timeout_s: float = 3600.0

    def __post_init__(self):
        from defectnet.phonons.forceconstants import get_tier
        from defectnet.phonons.potentials import canonical_name

        get_tier(self.tier)
        pot = canonical_name(self.potential)
        object.__setattr__(self, "potential", pot)
        if self.host.potential != pot:
            object.__setattr__(self, "host", replace(self.host, potential=pot))
        self.sampler_config()  # validates the sampler against the supercell size

    def sampler_config(self):
        """The :class:`~defectnet.sampling.SamplerConfig` of the sampler settings."""
        from defectnet.sampling import SamplerConfig

        n = self.supercell_atoms
        s = self.sampler
        try:
            return SamplerConfig(n_dopants=s.n_dopants, conc_range=s.conc_range, max_total=s.max_total,
                                 n_distractors=s.n_distractors, supercell_atoms=(n, n) if np.isscalar(n) else n)
        except DefectnetError as exc:
            raise DefectnetError(f"config 'sampler': {exc}") from None

    # ----------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict:
        """JSON-able dict; :meth:`from_dict` rebuilds an equal config."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["hosts"] = _drop_defaults(asdict(self.hosts), HostSelection())
        d["grid"] = self.grid.to_dict()
        d["broadening"] = self.broadening.to_dict()
        d["sampler"] = asdict(self.sampler)
        d["host_settings"] = self.host.to_dict()
        del d["host"]
        d["tier_settings"] = self.tier_settings.to_dict()
        return json.loads(json.dumps(d, default=_json_default))  # tuples -> lists

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str | None = None) -> GenerateConfig:
        """Build and validate a config from a mapping (e.g. parsed YAML).

        Raises
        ------
        DefectnetError
            One line naming the offending key: unknown keys, wrong types, bad ranges.
        """
        try:
            return _parse_config(data)
        except DefectnetError as exc:
            raise DefectnetError(str(exc), source=source) from None

    def identity(self) -> dict:
        """The part of the config that decides how each row is computed (not how many)."""
        d = self.to_dict()
        for k in EXTENT_KEYS:
            d.pop(k, None)
        return d

    def identity_hash(self) -> str:
        return hashlib.sha1(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]


def load_config(path) -> GenerateConfig:
    """Read and validate a YAML (or JSON) generation config file."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DefectnetError("config file not found", source=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise DefectnetError(f"not valid YAML ({getattr(exc, 'problem', exc)})", source=str(path), line=line) from None
    if not isinstance(data, Mapping):
        raise DefectnetError("expected a mapping of config keys at the top level", source=str(path))
    return GenerateConfig.from_dict(data, source=str(path))


# ---------------------------------------------------------------- parsing helpers
def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _drop_defaults(d: dict, default) -> dict:
    ref = asdict(default)
    return {k: v for k, v in d.items() if v != ref[k]}


def _err(key: str, msg: str) -> DefectnetError:
    return DefectnetError(f"config key '{key}': {msg}")


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


def _to_int(key, v, lo=None):
    if not _is_number(v) or float(v) != int(v):
        raise _err(key, f"expected an integer, got {v!r}")
    if lo is not None and int(v) < lo:
        raise _err(key, f"must be >= {lo}, got {v}")
    return int(v)


def _to_float(key, v, lo=None, *, strict=False):
    if not _is_number(v):
        raise _err(key, f"expected a number, got {v!r}")
    if lo is not None and (float(v) <= lo if strict else float(v) < lo):
        raise _err(key, f"must be {'>' if strict else '>='} {lo}, got {v}")
    return float(v)


def _to_bool(key, v):
    if not isinstance(v, bool):
        raise _err(key, f"expected true or false, got {v!r}")
    return v


def _to_str(key, v):
    if not isinstance(v, str) or not v.strip():
        raise _err(key, f"expected a non-empty string, got {v!r}")
    return v.strip()


def _to_pair(key, v, kind):
    if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)) or len(v) != 2:
        raise _err(key, f"expected a [min, max] pair, got {v!r}")
    lo, hi = ((_to_int if kind is int else _to_float)(key, x) for x in v)
    if lo > hi:
        raise _err(key, f"expected min <= max, got {list(v)}")
    return lo, hi


def _to_str_list(key, v):
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)):
        raise _err(key, f"expected a list of strings, got {v!r}")
    return tuple(_to_str(key, x) for x in v)


def _check_keys(key: str, data, allowed) -> dict:
    if not isinstance(data, Mapping):
        raise _err(key, f"expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        where = f"{key}." if key else ""
        raise DefectnetError(f"unknown config key '{where}{unknown[0]}'; expected one of {', '.join(sorted(allowed))}")
    return dict(data)


def _parse_hosts(key, v) -> HostSelection:
    if isinstance(v, HostSelection):
        return v
    if isinstance(v, (list, tuple, str)):  # shorthand: a list of names and/or files
        names, files = [], []
        for item in _to_str_list(key, v):
            (files if Path(item).suffix or os.sep in item else names).append(item)
        return HostSelection(names=tuple(names), files=tuple(files))
    d = _check_keys(key, v, [f.name for f in fields(HostSelection)])
    out = {}
    for k, val in d.items():
        kk = f"{key}.{k}"
        if k in ("names", "files", "exclude", "exclude_from"):
            out[k] = _to_str_list(kk, val)
        elif k == "filter":
            out[k] = None if val is None else _to_str(kk, val)
        elif k == "all":
            out[k] = _to_bool(kk, val)
        elif k == "max_hosts":
            out[k] = None if val is None else _to_int(kk, val, 1)
        elif k == "structures":
            out[k] = _parse_structures(kk, val)
    sel = HostSelection(**out)
    if sel.is_empty():
        raise _err(key, "names no host; give names, a filter, all: true, files or structures")
    return sel


def _parse_structures(key, v) -> dict:
    if not isinstance(v, Mapping):
        raise _err(key, "expected a mapping name -> {cell, species, positions}")
    out = {}
    for name, s in v.items():
        if isinstance(s, Atoms):
            s = _atoms_to_dict(s)
        d = _check_keys(f"{key}.{name}", s, ["cell", "species", "positions"])
        try:
            _dict_to_atoms(d)
        except Exception as exc:  # numpy/ase raise several types for malformed input
            raise _err(f"{key}.{name}", f"not a valid structure ({exc})") from None
        out[str(name)] = {"cell": np.asarray(d["cell"], float).tolist(), "species": list(d["species"]),
                          "positions": np.asarray(d["positions"], float).tolist()}
    return out


def _atoms_to_dict(atoms: Atoms) -> dict:
    return {"cell": atoms.cell.array.tolist(), "species": atoms.get_chemical_symbols(),
            "positions": atoms.get_scaled_positions(wrap=True).tolist()}


def _dict_to_atoms(d: Mapping) -> Atoms:
    from defectnet.elements import check_element

    for s in d["species"]:
        check_element(s)
    return Atoms(list(d["species"]), cell=np.asarray(d["cell"], float).reshape(3, 3),
                 scaled_positions=np.asarray(d["positions"], float).reshape(-1, 3), pbc=True)


def _parse_settings(key, v, cls):
    """A frozen settings dataclass from a partial mapping; types follow the defaults."""
    if isinstance(v, cls):
        return v
    default = cls()
    d = _check_keys(key, v, [f.name for f in fields(cls)])
    out = {}
    for k, val in d.items():
        ref, kk = getattr(default, k), f"{key}.{k}"
        if isinstance(ref, bool):
            out[k] = _to_bool(kk, val)
        elif isinstance(ref, int):
            out[k] = _to_int(kk, val, 0)
        elif isinstance(ref, float):
            out[k] = _to_float(kk, val, 0.0)
        else:
            out[k] = _to_str(kk, val)
    return cls(**out)


def _parse_sampler(key, v) -> SamplerSettings:
    if isinstance(v, SamplerSettings):
        return v
    d = _check_keys(key, v, [f.name for f in fields(SamplerSettings)])
    out = {}
    for k, val in d.items():
        kk = f"{key}.{k}"
        if k in ("n_dopants", "n_distractors"):
            out[k] = _to_pair(kk, val, int)
        elif k == "conc_range":
            out[k] = _to_pair(kk, val, float)
        elif k == "max_total":
            out[k] = _to_float(kk, val, 0.0, strict=True)
        elif k in ("dopant_pool", "n_recommend"):
            out[k] = _to_int(kk, val, 1)
        elif k == "pool_choice":
            if val not in POOL_CHOICES:
                raise _err(kk, f"expected one of {', '.join(POOL_CHOICES)}, got {val!r}")
            out[k] = val
        elif k == "vocabulary":
            if val is not None:
                from defectnet.elements import check_element

                vocab = _to_str_list(kk, val)
                for el in vocab:
                    try:
                        check_element(el, dopant=True)
                    except DefectnetError as exc:
                        raise _err(kk, str(exc)) from None
                val = vocab
            out[k] = val
    return SamplerSettings(**out)


def _parse_broadening(key, v) -> Broadening:
    if isinstance(v, Broadening):
        return v
    d = _check_keys(key, v, ["fwhm_mev", "resolution"])
    fwhm = d.get("fwhm_mev")
    res = d.get("resolution")
    if res is not None:
        res = _to_str(f"{key}.resolution", res)
    if fwhm is not None:
        fwhm = _to_float(f"{key}.fwhm_mev", fwhm, 0.0, strict=True)
    if fwhm is None and res is None:
        fwhm = 1.0
    try:
        return Broadening(fwhm_mev=fwhm, resolution=res)
    except DefectnetError as exc:
        raise _err(key, str(exc)) from None


def _parse_grid(key, v) -> EnergyGrid:
    if isinstance(v, EnergyGrid):
        return v
    _check_keys(key, v, [f.name for f in fields(EnergyGrid)])
    try:
        return EnergyGrid.from_dict({**DEFAULT_GRID.to_dict(), **v})
    except (DefectnetError, TypeError) as exc:
        raise _err(key, str(exc)) from None


def _parse_supercell(key, v):
    if _is_number(v):
        return _to_int(key, v, 1)
    return _to_pair(key, v, int)


#: Top-level key -> parser(key, value). YAML names are the dataclass field names, except
#: ``host_settings`` for :class:`HostSettings`.
_TOP_LEVEL: dict[str, tuple[str, Callable]] = {
    "hosts": ("hosts", _parse_hosts),
    "samples_per_host": ("samples_per_host", lambda k, v: _to_int(k, v, 1)),
    "samples_per_task": ("samples_per_task", lambda k, v: _to_int(k, v, 1)),
    "potential": ("potential", _to_str),
    "tier": ("tier", _to_str),
    "supercell_atoms": ("supercell_atoms", _parse_supercell),
    "seed": ("seed", lambda k, v: _to_int(k, v, 0)),
    "grid": ("grid", _parse_grid),
    "broadening": ("broadening", _parse_broadening),
    "sampler": ("sampler", _parse_sampler),
    "host_settings": ("host", lambda k, v: _parse_settings(k, v, HostSettings)),
    "tier_settings": ("tier_settings", lambda k, v: _parse_settings(k, v, TierSettings)),
    "max_imaginary_mev": ("max_imaginary_mev", lambda k, v: _to_float(k, v, 0.0)),
    "max_doped_imaginary_mev": ("max_doped_imaginary_mev", lambda k, v: None if v is None else _to_float(k, v, 0.0)),
    "task_timeout_s": ("task_timeout_s", lambda k, v: _to_float(k, v, 0.0, strict=True)),
}


def _parse_config(data: Mapping) -> GenerateConfig:
    d = _check_keys("", data, _TOP_LEVEL)
    if "hosts" not in d:
        raise DefectnetError("config key 'hosts' is required (names, a filter, all: true, files or structures)")
    kwargs = {}
    for key, value in d.items():
        name, parse = _TOP_LEVEL[key]
        kwargs[name] = parse(key, value)
    for key in ("potential", "tier"):
        if key in kwargs:
            try:
                GenerateConfig(**{key: kwargs[key]})
            except DefectnetError as exc:
                raise _err(key, str(exc)) from None
    return GenerateConfig(**kwargs)


# ============================================================================ hosts and plans


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
        return _fractions(self.atoms.get_chemical_symbols())


def resolve_hosts(sel: HostSelection) -> list[HostInput]:
    """The hosts a selection names, in a stable order (library hosts via :mod:`defectnet.hosts`)."""
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
        atoms = _dict_to_atoms(d)
        add(HostInput(name, atoms, atoms.get_chemical_formula(mode="metal"), "user", "inline"))
    excluded = {n.lower() for n in sel.exclude} | {n.lower() for n in hosts_in_training_files(sel.exclude_from)}
    hosts = [h for h in out.values() if h.name.lower() not in excluded]
    if sel.max_hosts is not None:
        hosts = hosts[: sel.max_hosts]
    if not hosts:
        raise DefectnetError("the host selection is empty")
    return hosts


def hosts_in_training_files(paths) -> set[str]:
    """Names of the hosts with samples in training files (or directories of them), and their failed hosts.

    A path that does not exist holds no host (the first chunk of a dataset has no
    predecessors); a file that is not a readable training file is an error. A host listed
    without samples (its samples were still to come) is not done.
    """
    from defectnet.data.export import training_file_hosts, training_file_paths

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


def plan_host(host: HostInput, config: GenerateConfig, recommender, indices) -> HostPlan:
    """Recommend dopants for ``host``, choose its pool and draw the jobs ``indices``."""
    from defectnet.sampling import sample_candidates, sample_scenario

    plan = HostPlan(host)
    try:
        records = recommender.recommend(host.atoms, n=config.sampler.n_recommend)
    except DefectnetError as exc:
        plan.failure = ("no_dopants", f"the recommender failed: {exc}")
        return plan
    best: dict[str, float] = {}
    for r in records:
        best[r.dopant] = max(best.get(r.dopant, 0.0), r.score)
    pool = choose_pool(best, config.sampler, sample_seed(config.seed, host.name, POOL_INDEX))
    plan.records, plan.pool = records, pool
    if not pool:
        plan.failure = ("no_dopants", "the recommender proposes no dopant for this host")
        return plan
    pool_records = [r for r in records if r.dopant in pool]
    counts = dict(Counter(host.atoms.get_chemical_symbols()))
    sampler = config.sampler_config()
    for i in indices:
        s = sample_seed(config.seed, host.name, i)
        scen_seed, distractor_seed, placement_seed = (
            int(x >> np.uint64(1)) for x in np.random.SeedSequence(s).generate_state(3, np.uint64))
        try:
            scen = sample_scenario(pool_records, counts, sampler, scen_seed)
        except DefectnetError as exc:
            plan.failure = ("no_dopants", f"no scenario can be drawn: {exc}")
            return plan
        cands, distractors = sample_candidates(scen.elements, records, config.sampler.n_distractors,
                                               np.random.default_rng(distractor_seed))
        plan.jobs[i] = SampleJob(i, s, scen.dopants, cands, distractors, placement_seed)
    return plan


def _fractions(symbols) -> dict[str, float]:
    els, counts = np.unique(np.asarray(symbols), return_counts=True)
    return {str(e): float(c) / len(symbols) for e, c in zip(els, counts)}


# ============================================================================ worker side


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
    (PotentialError, "potential_error"),
    (MemoryError, "out_of_memory"),
    (np.linalg.LinAlgError, "linalg_error"),
    (DefectnetError, "invalid_input"),
)


def failure_reason(exc: BaseException) -> tuple[str, str]:
    """(reason, one-line message) of an exception raised by a task."""
    if isinstance(exc, TaskFailure):
        return exc.reason, _one_line(exc)
    for kind, reason in FAILURE_REASONS:
        if isinstance(exc, kind):
            return reason, _one_line(exc)
    return "error", f"{type(exc).__name__}: {_one_line(exc)}"


def _one_line(exc) -> str:
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
                raise PotentialError(f"{type(exc).__name__}: {_one_line(exc)}") from exc
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


def _code_version() -> str:
    import defectnet

    return defectnet.__version__


# ------------------------------------------------------------------------ pristine hosts
def pack_pristine(host, supercell_matrix) -> bytes:
    """Blob of a pristine host: relaxed primitive cell, FC supercell, compact FC (eV/Å²), doped-cell matrix."""
    from phonopy.harmonic.force_constants import full_fc_to_compact_fc

    from defectnet.data.store import pack_arrays

    fc = np.asarray(host.phonon.force_constants)
    if fc.shape[0] == fc.shape[1]:  # compact: one row per primitive atom, n_prim/n_sc of the size
        fc = full_fc_to_compact_fc(host.phonon.primitive, fc)
    a = host.atoms
    return pack_arrays(
        cell=a.cell.array, scaled_positions=a.get_scaled_positions(wrap=False), numbers=a.numbers,
        masses=a.get_masses(), fc_supercell_matrix=host.fc_supercell_matrix, force_constants=fc,
        supercell_matrix=np.asarray(supercell_matrix, dtype=int),
        n_imaginary=host.n_imaginary, min_frequency_mev=host.min_frequency_mev,
    )


def unpack_pristine(blob: bytes, settings: HostSettings):
    """(PristineHost, doped-supercell matrix) from :func:`pack_pristine`'s blob."""
    from phonopy import Phonopy
    from phonopy.harmonic.force_constants import compact_fc_to_full_fc

    from defectnet.data.store import unpack_arrays
    from defectnet.phonons.host import PristineHost, to_phonopy_atoms

    a = unpack_arrays(blob)
    atoms = Atoms(numbers=a["numbers"], cell=a["cell"], scaled_positions=a["scaled_positions"], pbc=True)
    atoms.set_masses(a["masses"])
    phonon = Phonopy(to_phonopy_atoms(atoms), supercell_matrix=a["fc_supercell_matrix"], primitive_matrix="P",
                     symprec=settings.symprec)
    fc = a["force_constants"]
    phonon.force_constants = compact_fc_to_full_fc(phonon.primitive, fc) if fc.shape[0] != fc.shape[1] else fc
    host = PristineHost(atoms=atoms, phonon=phonon, settings=settings, n_imaginary=int(a["n_imaginary"]),
                        min_frequency_mev=float(a["min_frequency_mev"]))
    return host, a["supercell_matrix"]


def pack_patch(p) -> bytes:
    """Blob of a :class:`~defectnet.phonons.patches.Patch`: each dataclass field as an array."""
    from defectnet.data.store import pack_arrays

    return pack_arrays(**{f.name: np.asarray(getattr(p, f.name)) for f in fields(p)})


def unpack_patch(blob: bytes):
    from defectnet.data.store import unpack_arrays
    from defectnet.phonons.patches import Patch

    a = unpack_arrays(blob)
    kw = {}
    for f in fields(Patch):
        if f.name not in a:
            raise DefectnetError(f"a stored patch lacks {f.name!r} (made by another defectnet version); "
                                 "rerun with --retry-failed after deleting its patches")
        v = a[f.name]
        kw[f.name] = v.item() if v.ndim == 0 else v  # 0-d arrays hold the int/str fields
    return Patch(**kw)


def site_equivalence(cell, scaled_positions, numbers, symprec: float = 1e-3) -> dict[int, tuple[int, np.ndarray]]:
    """Map each primitive site j to (i, R): a symmetry-equivalent representative i and the Cartesian rotation R
    of a space-group operation taking site i to site j (i = j, R = 1 for representatives).

    A patch for a dopant on j is then the patch on i rotated by R (:func:`derive_patch`), so
    only one patch per Wyckoff orbit costs force calls: half of them in diamond and wurtzite.
    """
    import spglib

    L = np.asarray(cell, float)
    frac = np.asarray(scaled_positions, float)
    ds = spglib.get_symmetry_dataset((L, frac, np.asarray(numbers)), symprec=symprec)
    n = len(frac)
    if ds is None:
        return {j: (j, np.eye(3)) for j in range(n)}
    out = {}
    for j in range(n):
        i = int(ds.equivalent_atoms[j])
        out[j] = (j, np.eye(3))
        if i == j:
            continue
        for R, t in zip(ds.rotations, ds.translations):
            d = R @ frac[i] + t - frac[j]
            if np.allclose(d - np.rint(d), 0.0, atol=10 * symprec):
                out[j] = (i, L.T @ R @ np.linalg.inv(L.T))  # fractional -> Cartesian rotation
                break
    return out


#: How each Patch field transforms under a rotation R: vectors (n, 3) -> v Rᵀ, 3×3 blocks
#: (..., 3, 3) -> R b Rᵀ, or unchanged. A field not listed makes derive_patch refuse.
_PATCH_FIELDS = {"site": "site", "element": "same", "cluster": "same", "force_calls": "zero",
                 "rel_ang": "vector", "sphere_rel_ang": "vector", "displacement_ang": "vector", "delta": "tensor"}


def derive_patch(patch, rotation: np.ndarray, site: int):
    """The patch of the same dopant on a symmetry-equivalent site: ``patch`` rotated by ``rotation``.

    Returns None if the Patch has a field this function does not know how to rotate (then
    the patch is computed instead). ``force_calls`` of the result is 0.
    """
    from defectnet.phonons.patches import Patch

    R = np.asarray(rotation, float)
    kw = {}
    for f in fields(Patch):
        kind = _PATCH_FIELDS.get(f.name)
        v = getattr(patch, f.name)
        if kind is None:
            return None
        kw[f.name] = {"site": lambda _: int(site), "same": lambda x: x, "zero": lambda _: 0,
                      "vector": lambda x: np.asarray(x) @ R.T,
                      "tensor": lambda x: np.einsum("ab,...bc,dc->...ad", R, np.asarray(x), R)}[kind](v)
    return Patch(**kw)


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
        probe.start(config.task_timeout_s)
        timer = _Timer(probe)
        row = {"name": host.name, "worker": _WORKER_NAME, "code_version": _code_version()}
        try:
            ph = None
            for source in PRISTINE_SOURCES:
                try:
                    ph = source(host, config)
                except Exception as exc:  # a broken cache must not fail the host: compute instead
                    timer.t["source_error"] = f"{getattr(source, '__name__', source)}: {_one_line(exc)}"
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
            gpdos = pristine.neutron_weighted(_fractions(ctx.sc_atoms.get_chemical_symbols()))
            with timer("pack"):
                els = sorted(pristine.partials)
                spectra = pack_arrays(
                    pristine=pristine.values.astype(np.float32), pristine_gpdos=gpdos.values.astype(np.float32),
                    host_pdos=ph.spectrum.values.astype(np.float32) if ph.spectrum is not None else np.zeros(0, np.float32),
                    partial_elements=np.array(els), partials=np.array([pristine.partials[e] for e in els], np.float32),
                )
            row.update(status="ok", pristine=blob, spectra=spectra, supercell_atoms=len(ctx.sc_atoms))
        except Exception as exc:  # every failure becomes a row with its reason
            reason, msg = failure_reason(exc)
            row.update(status="failed", reason=reason, error=msg)
        finally:
            probe.start(None)
        row["timings"] = timer.done()
        row["created"] = time.time()
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
    cache = ctx.host.__dict__.setdefault("patch_cache", {})
    for blob in blobs:
        digest = hashlib.blake2b(blob, digest_size=16).digest()
        if digest in ctx.patch_digests:
            continue
        p = unpack_patch(blob)
        cache[(p.site, p.element, settings)] = p  # the key get_patch looks up
        ctx.patch_digests.add(digest)


def patch_task(name: str, pristine_blob: bytes, site: int, element: str, config: GenerateConfig) -> dict:
    """Worker task: the force-constant patch of ``element`` on primitive site ``site``.

    Returns a ``patches``-table row (``status='failed'`` with a reason on failure).
    """
    from defectnet.phonons.patches import get_patch

    with _TASK_LOCK:
        calc, probe = _calculator(config.potential)
        probe.start(config.task_timeout_s)
        timer = _Timer(probe)
        row = {"site": int(site), "element": element, "worker": _WORKER_NAME, "code_version": _code_version()}
        try:
            with timer("context"):
                ctx = _context(name, pristine_blob, config, supercell=False)
            n0 = len(probe.durations)
            with timer("patch"):
                patch, calls = get_patch(ctx.host, int(site), element, calc, config.tier_settings)
            durations = probe.durations[n0:]
            # get_patch relaxes, then makes exactly `calls` displacement force calls: the tail.
            displace = float(sum(durations[len(durations) - calls:])) if calls else 0.0
            timer.t["displace_force_s"] = displace
            timer.t["relax_s"] = timer.t["patch_s"] - displace
            timer.t["relax_force_s"] = float(sum(durations[: len(durations) - calls]))
            with timer("pack"):
                data = pack_patch(patch)
            row.update(status="ok", force_calls=int(patch.force_calls), data=data)
        except Exception as exc:  # every failure becomes a row with its reason
            reason, msg = failure_reason(exc)
            row.update(status="failed", reason=reason, error=msg)
        finally:
            probe.start(None)
        row["timings"] = timer.done()
        row["created"] = time.time()
        return row


def samples_task(name: str, prototype: str, pristine_blob: bytes, patch_blobs: list, jobs: list[SampleJob],
                 config: GenerateConfig) -> list[dict]:
    """Worker task: the doped samples ``jobs`` of one host; returns ``samples``-table rows.

    Each sample fails or succeeds on its own (a failure is a row with its reason).
    """
    from defectnet.phonons.potentials import potential_info

    with _TASK_LOCK:
        needs_calc = config.tier != "mass"
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
                "grid_id": config.grid.grid_id, "worker": _WORKER_NAME, "code_version": _code_version(),
                "dopants": [[el, site, float(frac), None] for el, site, frac in job.dopants],
            }
            timer = _Timer(probe)
            if k == 0:  # the set-up is paid by (and timed in) the task's first sample
                timer.t.update(setup.t)
                timer.t0, timer.cpu0 = setup.t0, setup.cpu0
            try:
                if setup_error:
                    raise TaskFailure(*setup_error)
                probe.start(config.task_timeout_s)
                _one_sample(ctx, job, config, calc, probe, timer, row)
            except Exception as exc:  # every failure becomes a row with its reason
                reason, msg = failure_reason(exc)
                row.update(status="failed", reason=reason, error=msg)
            finally:
                probe.start(None)
            row["timings"] = timer.done()
            row["created"] = time.time()
            rows.append(row)
        return rows


def _one_sample(ctx: _HostContext, job: SampleJob, config: GenerateConfig, calc, probe, timer, row):
    from defectnet.data.store import pack_arrays
    from defectnet.doping import DopantSpec, substitute
    from defectnet.phonons.dos import gamma_spectrum
    from defectnet.phonons.forceconstants import DopedSystem, get_tier

    specs = [DopantSpec(el, site, frac) for el, site, frac in job.dopants]
    with timer("substitute"):
        doped_atoms, sub = substitute(ctx.sc_atoms, specs, np.random.default_rng(job.placement_seed))
    idx = np.array(sorted(i for v in sub.indices.values() for i in v), dtype=int)
    with timer("tier"):
        system = DopedSystem(doped_atoms, idx, ctx.fc0, ctx.host, calc, False)
        result = get_tier(config.tier)(system, config.tier_settings)
    probe.check()
    with timer("diagonalise"):
        doped, _ = gamma_spectrum(result.fc, result.atoms, config.grid, **config.broadening.kwargs())
    n_imag = int(doped.meta.get("n_imaginary", 0))
    row.update(n_imaginary=n_imag, min_frequency_mev=float(doped.meta["min_frequency_mev"]),
               supercell_atoms=len(doped_atoms))
    limit = config.max_imaginary_mev if config.max_doped_imaginary_mev is None else config.max_doped_imaginary_mev
    if doped.meta["min_frequency_mev"] < -limit:
        raise TaskFailure("imaginary_modes", f"doped supercell has {n_imag} imaginary modes at Γ, "
                          f"lowest {doped.meta['min_frequency_mev']:.2f} meV < -{limit:g} meV")
    gpdos = doped.neutron_weighted(_fractions(doped_atoms.get_chemical_symbols()))
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
            error = _one_line(exc)
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


# ============================================================================ the client pipeline


@dataclass
class GenerateSummary:
    """What one ``generate`` run did."""

    store: str
    workers: str
    wall_s: float
    hosts: dict = field(default_factory=dict)  # status -> count, this run
    patches: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)  # "stage:reason" -> count, this run
    skipped_samples: int = 0  # already in the store
    writer: dict = field(default_factory=dict)  # rows, transactions, seconds, rows_per_s
    startup_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        ok, failed = self.samples.get("ok", 0), self.samples.get("failed", 0)
        fails = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items())) or "none"
        return (f"{ok} new samples ({failed} failed; {self.skipped_samples} already stored), "
                f"{self.hosts.get('ok', 0)} new hosts, {self.patches.get('ok', 0)} new patches in "
                f"{self.wall_s:.1f} s on {self.workers}; failures: {fails}")


#: Tiers whose samples need force-constant patches computed per host first.
PATCH_TIERS = frozenset({"patch"})
_PRIORITY = {"pristine": 0, "patch": 10, "samples": 20}  # finish open hosts before starting new ones


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

    def set_primitive(self, blob: bytes):
        """Primitive-cell symbols and site symmetry, from the pristine blob."""
        from defectnet.data.store import unpack_arrays

        a = unpack_arrays(blob)
        self.symbols = [_symbol(z) for z in a["numbers"]]
        self.equivalence = site_equivalence(a["cell"], a["scaled_positions"], a["numbers"])

    def representative(self, key):
        return (self.equivalence.get(key[0], (key[0], None))[0], key[1])

    def needs(self, job: SampleJob, tier: str) -> set:
        if tier not in PATCH_TIERS:
            return set()
        return {(i, el) for el, site, _ in job.dopants for i, s in enumerate(self.symbols) if s == site}


class _Pipeline:
    """The client's loop: opens hosts, submits their tasks as inputs become ready, commits results."""

    def __init__(self, store, config: GenerateConfig, hosts: list[HostInput], progress: bool):
        self.store, self.config = store, config
        self.hosts = hosts
        self.client = None
        self.tasks: dict = {}  # future key -> (kind, state, payload)
        self.recommender = None
        self.summary_counts = {"hosts": Counter(), "patches": Counter(), "samples": Counter(), "failures": Counter()}
        self.writer = {"rows": 0, "transactions": 0, "seconds": 0.0}
        self.progress = progress
        self.bar = None
        self._threads, self._threads_at = 1, -np.inf

    # ----------------------------------------------------------------- bookkeeping
    def _write(self, fn, arg):
        """One store transaction (timed: the writer is the one central component)."""
        t0 = time.perf_counter()
        out = fn(arg)
        self.writer["seconds"] += time.perf_counter() - t0
        self.writer["transactions"] += 1
        self.writer["rows"] += len(arg) if isinstance(arg, list) else 1
        return out

    def _submit(self, kind, state, fn, *args, payload=None):
        fut = self.client.submit(fn, *args, priority=_PRIORITY[kind], pure=False)
        self.tasks[fut.key] = (kind, state, payload)
        self.ac.add(fut)
        return fut

    def _scatter(self, blob):
        return self.client.scatter(blob, hash=False)

    def _fail(self, stage: str, reason: str):
        self.summary_counts["failures"][f"{stage}:{reason}"] += 1

    # ----------------------------------------------------------------- run
    def plan(self) -> int:
        """Find what is left to do (from the store); returns the number of samples to compute."""
        cfg = self.config
        done_per_host = dict(self.store.conn.execute(
            "SELECT host, COUNT(*) FROM samples GROUP BY host").fetchall())
        status_of = {h["name"]: h for h in self.store.hosts()}
        queue, total, initial = [], 0, 0
        for h in self.hosts:
            row = status_of.get(h.name)
            if row is not None and row["structure_hash"] != h.structure_hash:
                raise DefectnetError(f"host {h.name!r} in the store has a different structure than the config gives; "
                                     "rename the host or use a new store")
            if row is not None and row["status"] == "failed":
                continue  # a recorded failure is final (use --retry-failed)
            stored = min(done_per_host.get(h.name, 0), cfg.samples_per_host)
            total += cfg.samples_per_host
            initial += stored
            if row is None or stored < cfg.samples_per_host:
                queue.append(_HostState(h))
        self.skipped, self.total = initial, total
        self.queue = queue
        self.open: list[_HostState] = []
        return total - initial

    def run(self, client):
        from distributed import as_completed

        self.client = client
        # Results are fetched by as_completed's own loop: half the client CPU per task of fut.result().
        self.ac = as_completed(with_results=True, raise_errors=False)
        if self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, initial=self.skipped, unit="spectra", desc="generate",
                            dynamic_ncols=True, smoothing=0.05)
        self._fill()
        for fut, result in self.ac:
            kind, state, payload = self.tasks.pop(fut.key)
            error = None
            if fut.status != "finished":  # the worker died (KilledWorker) or the task was cancelled
                exc = result[1] if isinstance(result, tuple) and len(result) == 3 else result
                result, error = None, ("worker_died", f"{type(exc).__name__}: {_one_line(exc)}")
            getattr(self, f"_on_{kind}")(state, result, error, payload)
            fut.release()
            self._fill()
        if self.bar is not None:
            self.bar.close()

    def _max_open(self) -> int:
        """Hosts in progress at once: twice the worker threads, refreshed every 10 s (clusters scale)."""
        now = time.monotonic()
        if now - self._threads_at > 10.0:
            info = self.client.scheduler_info(n_workers=0)  # totals only: cheap with 1,000 workers
            self._threads, self._threads_at = int(info.get("total_threads") or 1), now
        return max(2, 2 * self._threads)

    def _fill(self):
        """Open hosts until enough are in progress to keep every worker busy."""
        while self.queue and len(self.open) < self._max_open():
            state = self.queue.pop(0)
            self.open.append(state)
            self._open(state)
        self._postfix()

    def _postfix(self):
        if self.bar is not None:
            c = self.summary_counts
            self.bar.set_postfix_str(f"hosts open {len(self.open)}, left {len(self.queue)}; "
                                     f"failed {sum(c['failures'].values())}", refresh=False)

    def _close(self, state: _HostState):
        state.pristine = None
        state.patch_futures.clear()
        if state in self.open:
            self.open.remove(state)

    def _recommender(self):
        if self.recommender is None:
            from defectnet.recommend import DopantRecommender

            vocab = self.config.sampler.vocabulary
            kw = {} if vocab is None else {"vocabulary": vocab}
            self.recommender = DopantRecommender(n_max=self.config.sampler.n_recommend, **kw).fit()
        return self.recommender

    def _open(self, state: _HostState):
        cfg, h = self.config, state.host
        row = self.store.host(h.name, blobs=False)
        done = set(self.store.done_samples(row["id"])) if row else set()
        missing = [i for i in range(cfg.samples_per_host) if i not in done]
        state.plan = plan_host(h, cfg, self._recommender(), missing)
        if state.plan.failure:
            reason, msg = state.plan.failure
            self._write(self.store.add_host, self._host_row(state, {"status": "failed", "reason": reason,
                                                                     "error": msg, "created": time.time()}))
            self._host_failed(state, reason, len(missing))
            return
        state.waiting = [state.plan.jobs[i] for i in missing]
        if row is None:
            self._submit("pristine", state, pristine_task, h, cfg)
            return
        state.host_id = row["id"]
        full = self.store.host(h.name, blobs=True)
        state.set_primitive(full["pristine"])
        state.pristine = self._scatter(full["pristine"])
        self._start_patches(state)

    def _host_row(self, state: _HostState, worker_row: dict) -> dict:
        from defectnet.data.store import pack_arrays
        from defectnet.phonons.potentials import potential_info

        h, cfg, info = state.host, self.config, potential_info(self.config.potential)
        plan = state.plan
        a = h.atoms
        return {
            **worker_row,
            "name": h.name, "formula": h.formula, "prototype": h.prototype, "source": h.source,
            "elements": sorted(set(a.get_chemical_symbols())), "composition": h.composition,
            "structure_hash": h.structure_hash,
            "recommendations": [r.to_dict() for r in plan.records] if plan else None,
            "pool": list(plan.pool) if plan else None,
            "potential": info.name, "potential_version": f"{info.package} {info.version} ({info.model})",
            "tier": cfg.tier, "grid_id": cfg.grid.grid_id,
            "input": pack_arrays(cell=a.cell.array, scaled_positions=a.get_scaled_positions(), numbers=a.numbers),
        }

    def _host_failed(self, state: _HostState, reason: str, n_samples: int):
        self.summary_counts["hosts"]["failed"] += 1
        self._fail("host", reason)
        if self.bar is not None:
            self.bar.total -= n_samples
            self.bar.refresh()
        self._close(state)

    # ----------------------------------------------------------------- results
    def _on_pristine(self, state: _HostState, result, error, payload):
        if error:
            result = {"status": "failed", "reason": error[0], "error": error[1], "created": time.time()}
        row = self._host_row(state, result)
        state.host_id = self._write(self.store.add_host, row)
        if row["status"] != "ok":
            self._host_failed(state, row["reason"], len(state.waiting))
            return
        self.summary_counts["hosts"]["ok"] += 1
        state.set_primitive(row["pristine"])
        state.pristine = self._scatter(row["pristine"])
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
        self._submit("patch", state, patch_task, state.host.name, state.pristine, key[0], key[1], self.config,
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
            row["host_id"] = state.host_id
            self._write(self.store.add_patch, row)
            self.summary_counts["patches"][row["status"]] += 1
            if row["status"] != "ok":
                self._fail("patch", row["reason"])
        if row["status"] == "ok":
            state.patch_status[key] = "ok"
            state.patch_futures[key] = self._scatter(row["data"])
        else:
            state.patch_status[key] = (row["reason"], row["error"])
        for dkey in state.derived.pop(key, []):
            if state.patch_status.get(dkey) != "pending":
                continue
            t0 = time.perf_counter()
            base = {"site": dkey[0], "element": dkey[1], "worker": "client", "code_version": _code_version(),
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
        if doomed:
            self._commit_doomed(state, doomed)
        # While patches are still coming, only submit full tasks; the rest waits for them.
        n_full = len(ready) // cfg.samples_per_task * cfg.samples_per_task
        submit, keep = (ready, []) if not pending else (ready[:n_full], ready[n_full:])
        state.waiting = keep + still
        for start in range(0, len(submit), cfg.samples_per_task):
            chunk = submit[start:start + cfg.samples_per_task]
            keys = sorted(set().union(*(state.needs(j, cfg.tier) for j in chunk)))
            patches = [state.patch_futures[k] for k in keys]
            state.in_flight += len(chunk)
            self._submit("samples", state, samples_task, state.host.name, state.host.prototype, state.pristine,
                         patches, chunk, cfg, payload=chunk)
        self._maybe_done(state)

    def _commit_doomed(self, state: _HostState, jobs):
        from defectnet.phonons.potentials import potential_info

        rows = []
        for job in jobs:
            bad = [(k, state.patch_status[k]) for k in sorted(state.needs(job, self.config.tier))
                   if isinstance(state.patch_status[k], tuple)]
            (site, el), (reason, err) = bad[0]
            rows.append(self._failed_sample_row(state, job, reason, f"patch {el}@{state.symbols[site]}[{site}] "
                                                f"failed: {err}", potential_info(self.config.potential).name))
        self._commit_samples(state, rows)

    def _failed_sample_row(self, state, job: SampleJob, reason, error, potential) -> dict:
        return {"host": state.host.name, "prototype": state.host.prototype, "sample_index": job.index,
                "seed": job.seed, "status": "failed", "reason": reason, "error": error,
                "n_dopants": len(job.dopants), "dopants": [[e, s, f, None] for e, s, f in job.dopants],
                "candidates": list(job.candidates), "distractors": list(job.distractors), "tier": self.config.tier,
                "potential": potential, "grid_id": self.config.grid.grid_id, "created": time.time(),
                "code_version": _code_version()}

    def _on_samples(self, state: _HostState, rows, error, jobs):
        if error:
            from defectnet.phonons.potentials import potential_info

            pot = potential_info(self.config.potential).name
            rows = [self._failed_sample_row(state, j, error[0], error[1], pot) for j in jobs]
        state.in_flight -= len(jobs)
        self._commit_samples(state, rows)
        self._maybe_done(state)

    def _commit_samples(self, state: _HostState, rows):
        for r in rows:
            r["host_id"] = state.host_id
        self._write(self.store.add_samples, rows)
        for r in rows:
            self.summary_counts["samples"][r["status"]] += 1
            if r["status"] != "ok":
                self._fail("sample", r["reason"])
        if self.bar is not None:
            self.bar.update(len(rows))

    def fill(self, summary: GenerateSummary):
        c = self.summary_counts
        summary.hosts, summary.patches, summary.samples = dict(c["hosts"]), dict(c["patches"]), dict(c["samples"])
        summary.failures = dict(c["failures"])
        summary.skipped_samples = getattr(self, "skipped", 0)
        w = dict(self.writer)
        w["rows_per_s"] = w["rows"] / w["seconds"] if w["seconds"] > 0 else None
        summary.writer = w

    def _maybe_done(self, state: _HostState):
        pending = any(s == "pending" for s in state.patch_status.values())
        if not pending and not state.waiting and state.in_flight == 0:
            self._close(state)


def _symbol(z) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(z)]


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, *, processes: bool = True):
    """A Dask client: on ``scheduler`` if given, else on a new ``LocalCluster`` of ``workers`` processes.

    Workers get one thread each (the calculator is not thread-safe; Dask's defaults pin
    BLAS/OpenMP to one thread per worker). Yields ``(client, label)``.
    """
    import logging

    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise DefectnetError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
        label = scheduler
    else:
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes, dashboard_address=":0",
                               silence_logs=logging.ERROR)
        client = Client(cluster)
        label = f"local:{n}" + ("" if processes else " (threads)")
    try:
        yield client, label
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _check_store_config(store, config: GenerateConfig):
    """A new store takes the config; an existing one must have the same identity."""
    import defectnet
    from defectnet.phonons.patches import PATCH_ALGORITHM
    from defectnet.phonons.potentials import potential_info
    from defectnet.simulate import library_versions

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
    if stored != config.identity_hash():
        old = store.get_meta("config") or {}
        new = config.to_dict()
        diff = sorted(k for k in set(old) | set(new) if k not in EXTENT_KEYS and old.get(k) != new.get(k))
        raise DefectnetError(
            f"the store was generated with a different config (differs in: {', '.join(diff) or '?'}); only "
            f"{', '.join(EXTENT_KEYS)} may change between runs — use a new --out", source=str(store.path))
    store.set_meta(config=config.to_dict())


def run_generate(config: GenerateConfig, out, *, workers: int | None = None, scheduler: str | None = None,
                 client=None, processes: bool = True, progress: bool = True, retry_failed: bool = False
                 ) -> GenerateSummary:
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
    retry_failed : bool
        Delete the failed rows first, so they are computed again.

    Returns
    -------
    GenerateSummary
    """
    from defectnet.data.store import Store

    t0 = time.perf_counter()
    hosts = resolve_hosts(config.hosts)  # config errors before anything starts
    summary = GenerateSummary(store=str(out), workers="-", wall_s=0.0)
    with Store(out, "w") as store:
        _check_store_config(store, config)
        if retry_failed:
            store.delete_failed()
        pipeline = _Pipeline(store, config, hosts, progress)
        if pipeline.plan() == 0 and not pipeline.queue:
            pipeline.fill(summary)
            summary.wall_s = time.perf_counter() - t0
            return summary  # nothing to do: no cluster, no run row
        cm = _existing(client) if client is not None else dask_client(workers, scheduler, processes=processes)
        with cm as (cl, label):
            cl.register_plugin(DefectnetWorkerSetup(config.potential, load=config.tier != "mass"))
            summary.workers = label
            summary.startup_s = time.perf_counter() - t0
            run_id = store.start_run(workers=label, code_version=_code_version(), config=config.to_dict())
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


@contextmanager
def _existing(client):
    yield client, f"client:{client.scheduler.address}"
