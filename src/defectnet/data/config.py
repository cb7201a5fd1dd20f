"""The validated dataset-generation config and its YAML parsing.

:class:`GenerateConfig` (with :class:`HostSelection`, :class:`SamplerSettings` and
:class:`Broadening`) is everything that determines a generated dataset and is saved in the
store; :func:`load_config` reads one from a YAML file. Unknown keys, wrong types and bad
ranges are rejected with one-line errors that name the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from ase import Atoms

from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID, EnergyGrid
from defectnet.phonons.forceconstants import TierSettings
from defectnet.phonons.host import HostSettings
from defectnet.phonons.potentials import canonical_name
from defectnet.settings import Settings, check_keys, key_error, setting, to_str_list

HOST_ORDERS = ("listed", "cheapest")
POOL_CHOICES = ("random", "best")


# ------------------------------------------------- readers of the keys that need more than their type
def _read_structures(key: str, v) -> dict:
    if not isinstance(v, Mapping):
        raise key_error(key, "expected a mapping name -> {cell, species, positions}")
    out = {}
    for name, s in v.items():
        if isinstance(s, Atoms):
            s = _atoms_to_dict(s)
        d = check_keys(f"{key}.{name}", s, ["cell", "species", "positions"])
        try:
            dict_to_atoms(d)
        except Exception as exc:  # numpy/ase raise several types for malformed input
            raise key_error(f"{key}.{name}", f"not a valid structure ({exc})") from None
        out[str(name)] = {"cell": np.asarray(d["cell"], float).tolist(), "species": list(d["species"]),
                          "positions": np.asarray(d["positions"], float).tolist()}
    return out


def _atoms_to_dict(atoms: Atoms) -> dict:
    return {"cell": atoms.cell.array.tolist(), "species": atoms.get_chemical_symbols(),
            "positions": atoms.get_scaled_positions(wrap=True).tolist()}


def dict_to_atoms(d: Mapping) -> Atoms:
    from defectnet.elements import check_element

    for s in d["species"]:
        check_element(s)
    return Atoms(list(d["species"]), cell=np.asarray(d["cell"], float).reshape(3, 3),
                 scaled_positions=np.asarray(d["positions"], float).reshape(-1, 3), pbc=True)


def _check_vocabulary(vocabulary) -> None:
    from defectnet.elements import check_element

    for el in vocabulary:
        check_element(el, dopant=True)


def _read_pools(key: str, val) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``{host: [El or El@Site, ...]}`` (or its stored list of pairs) → sorted pairs."""
    from defectnet.elements import check_element

    if isinstance(val, Mapping):
        items = list(val.items())
    elif isinstance(val, (list, tuple)) and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in val):
        items = [tuple(x) for x in val]
    else:
        raise key_error(key, f"expected a mapping of host name to a list of dopants, got {val!r}")
    out = {}
    for host, entries in items:
        entries = to_str_list(f"{key}.{host}", entries)
        if not entries:
            raise key_error(f"{key}.{host}", "expected at least one dopant")
        for e in entries:
            for j, el in enumerate(e.split("@")):
                try:
                    check_element(el, dopant=j == 0)
                except DefectnetError as exc:
                    raise key_error(f"{key}.{host}", f"{e!r}: {exc}") from None
            if e.count("@") > 1:
                raise key_error(f"{key}.{host}", f"expected El or El@Site, got {e!r}")
        out[str(host)] = tuple(entries)
    return tuple(sorted(out.items()))


def _check_tier(tier: str) -> None:
    from defectnet.phonons.tiers import get_tier

    get_tier(tier)  # 'cluster' makes its patches inside each sample (the engine's disk cache shares them), like 'full'


@dataclass(frozen=True)
class HostSelection(Settings, what="hosts"):
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
    per_family : int or None
        Keep at most this many hosts of each structure family (the library's prototype),
        counting the hosts the ``exclude_from`` files already hold: with ``order: cheapest``,
        the cheapest hosts of the families the data lacks (a held-out host counts, so ask
        for one more than the training hosts wanted). Hosts of no library family are kept.
    order : str
        ``"listed"`` (default): the order above. ``"cheapest"``: sorted (stably) by the size
        of each host's force-constant cell, which sets the cost of its pristine phonons and
        of every patch — a 64-atom cell is ~10× cheaper than a 216-atom one, so an
        interrupted run covers the most hosts.
    """

    names: tuple[str, ...] = ()
    filter: str | None = None
    all: bool = False
    files: tuple[str, ...] = ()
    structures: Mapping = setting(default_factory=dict, parse=_read_structures)
    exclude: tuple[str, ...] = ()
    exclude_from: tuple[str, ...] = ()
    max_hosts: int | None = setting(None, lo=1)
    per_family: int | None = setting(None, lo=1)
    order: str = setting("listed", choices=HOST_ORDERS)

    @staticmethod
    def from_atoms(structures: Mapping[str, Atoms], **kw) -> HostSelection:
        """Hosts given as ``{name: ase.Atoms}`` (stored inline in the config)."""
        return HostSelection(structures={n: _atoms_to_dict(a) for n, a in structures.items()}, **kw)

    def is_empty(self) -> bool:
        return not (self.names or self.filter or self.all or self.files or self.structures)

    def to_dict(self) -> dict:
        """The keys that differ from their defaults."""
        default = Settings.to_dict(HostSelection())
        return {k: v for k, v in super().to_dict().items() if v != default[k]}


def _read_hosts(key: str, v) -> HostSelection:
    """``hosts``: a mapping of :class:`HostSelection` keys, or a list of names and/or files."""
    if isinstance(v, (list, tuple, str)):
        names, files = [], []
        for item in to_str_list(key, v):
            (files if Path(item).suffix or os.sep in item else names).append(item)
        v = {"names": names, "files": files}
    selection = HostSelection.from_dict(v, key=key)
    if selection.is_empty():
        raise key_error(key, "names no host; give names, a filter, all: true, files or structures")
    return selection


@dataclass(frozen=True)
class SamplerSettings(Settings, what="sampler settings"):
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
    max_radius_mismatch : float or None
        True dopants only where the dopant's covalent radius is within this share of the
        host site's (|r_d / r_site − 1|, Cordero radii); ``None``: no limit. Distractors are
        not limited. Measured on 4 antimonides / sulfides with the patch tier: samples with
        a substituent beyond 35 % (O, N on Sb) were rejected for imaginary modes in 59 % of
        cases, the rest in 4.5 %; at 0.2–25 % such substitutions are not solid solutions anyway.
    isovalent_ionic : bool
        On host sites whose bonds are mostly ionic (Pauling ionic character ≥ 0.5, i.e. an
        electronegativity difference ≥ 1.67: NaCl, CaO, ZnO, not GaN or CuI), true dopants keep
        the site's oxidation state (Br, K on NaI; Sr, S on CaO): a neutral supercell has no
        compensating charge for an aliovalent ion at 0.2–25 %. It does not change the yield
        (rejections follow the total concentration, see the README), only what is physical.
        Distractors are not limited.
    pools : tuple of (str, tuple of str)
        Explicit dopant pools per host name, e.g. ``{"GaAs": ["Si", "Zn@Ga", "C@As"]}`` in YAML:
        ``El`` takes the recommended site(s) of El, ``El@Site`` names the site. A listed host
        bypasses ``dopant_pool``, ``pool_choice`` and the radius / valence limits (the user
        knows their system); distractors still come from its recommendations.
    """

    n_dopants: tuple[int, int] = (1, 4)
    conc_range: tuple[float, float] = (0.002, 0.1)  # atomic fraction of the supercell
    max_total: float = setting(0.25, above=0.0)  # atomic fraction of the supercell
    n_distractors: tuple[int, int] = (1, 4)
    dopant_pool: int = setting(6, lo=1)
    pool_choice: str = setting("random", choices=POOL_CHOICES)
    n_recommend: int = setting(20, lo=1)
    vocabulary: tuple[str, ...] | None = setting(None, check=_check_vocabulary)
    max_radius_mismatch: float | None = setting(None, above=0.0)
    isovalent_ionic: bool = False
    pools: tuple[tuple[str, tuple[str, ...]], ...] = setting((), parse=_read_pools)

    def pool_for(self, host: str) -> tuple[str, ...] | None:
        """The explicit pool of ``host`` (``El`` or ``El@Site`` entries), or None."""
        return dict(self.pools).get(host)

    def __post_init__(self):
        if self.max_radius_mismatch is not None and not self.max_radius_mismatch > 0:
            raise DefectnetError(f"sampler.max_radius_mismatch must be > 0, got {self.max_radius_mismatch}")
        if self.pool_choice not in POOL_CHOICES:
            raise DefectnetError(f"sampler.pool_choice must be one of {', '.join(POOL_CHOICES)}, got {self.pool_choice!r}")


@dataclass(frozen=True)
class Broadening(Settings, what="broadening"):
    """Exactly one of a constant Gaussian FWHM (meV) or an instrument-resolution preset; neither
    is a FWHM of 1 meV."""

    fwhm_mev: float | None = setting(None, above=0.0)
    resolution: str | None = None

    def __post_init__(self):
        if self.fwhm_mev is None and self.resolution is None:
            object.__setattr__(self, "fwhm_mev", 1.0)
        if self.fwhm_mev is not None and self.resolution is not None:
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
        """The one of the two that is given."""
        return {k: v for k, v in super().to_dict().items() if v is not None}


#: Config keys that may change between runs on one store: they say how much to do, not how
#: a row is computed. Every other key is part of the store's identity and must match.
#: ``placement_attempts`` is one of them: a row made at its first placement is the same row
#: whatever the limit, and each row records how many placements it took.
EXTENT_KEYS = ("hosts", "samples_per_host", "samples_per_task", "task_timeout_s", "placement_attempts",
               "max_unstable_fraction")


@dataclass(frozen=True)
class GenerateConfig(Settings, what="generation config"):
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
    placement_attempts : int
        Placements of a sample's dopants tried before it fails with ``imaginary_modes``
        (1 = no retry). The scenario (elements, sites, concentrations) is kept; only which
        sublattice atoms are replaced is drawn again, from the sample's seed and the attempt
        number. Imaginary modes come from neighbouring dopants (a Mg–Mg pair in SrO, an O
        shared by two patches), so at 10–25 % a new placement is often stable: the label
        distribution is no longer cut at high concentrations, at the price of configurations
        that avoid those motifs. ``timings.placement_attempts`` of each row says which it took.
    task_timeout_s : float
        Limit of one pristine/patch task or one sample, s (checked at every force call).
    max_unstable_fraction : float or None
        Patch tier: a host gives up once more than this fraction of its dopants (element
        on a site element, all its stored patches counted) have no stable position
        (``unstable_patch``). Samples that needed one are then failed as ``unstable_host``
        instead of being drawn again with other dopants, which on hosts that are unstable
        in this structure computes patch after unstable patch (3–15 min each). ``None``:
        never give up. Changing it keeps the store's identity: ``--retry-failed
        unstable_host`` draws such samples again.
    """

    hosts: HostSelection = setting(HostSelection(), parse=_read_hosts,
                                   required="names, a filter, all: true, files or structures")
    samples_per_host: int = setting(16, lo=1)
    samples_per_task: int = setting(4, lo=1)
    potential: str = setting("sevennet", check=canonical_name)
    tier: str = setting("patch", check=_check_tier)
    supercell_atoms: tuple[int, int] | int = setting((433, 500), lo=1)
    seed: int = setting(0, lo=0)
    grid: EnergyGrid = DEFAULT_GRID
    broadening: Broadening = Broadening()
    sampler: SamplerSettings = SamplerSettings()
    host: HostSettings = setting(HostSettings(), key="host_settings")
    tier_settings: TierSettings = TierSettings()
    max_imaginary_mev: float = setting(1.0, lo=0.0)  # meV
    max_doped_imaginary_mev: float | None = setting(None, lo=0.0)  # meV
    placement_attempts: int = setting(1, lo=1)
    task_timeout_s: float = setting(3600.0, above=0.0)
    max_unstable_fraction: float | None = setting(None, lo=0.0)

    def __post_init__(self):
        _check_tier(self.tier)
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

    def simulation_config(self, seed: int | None = None):
        """The :class:`~defectnet.simulation.SimulationConfig` of one spectrum made with these settings
        (tier, potential, supercell, broadening, grid, placement attempts); ``seed`` default: this config's + 1."""
        from defectnet.simulation import SimulationConfig

        b = self.broadening
        return SimulationConfig(tier=self.tier, potential=self.potential, supercell_atoms=self.supercell_atoms,
                                fwhm_mev=b.fwhm_mev or 1.0, resolution=b.resolution,
                                seed=self.seed + 1 if seed is None else seed, grid=self.grid, host=self.host,
                                tier_settings=self.tier_settings, placement_attempts=self.placement_attempts,
                                max_imaginary_mev=self.doped_imaginary_limit_mev)

    @property
    def doped_imaginary_limit_mev(self) -> float:
        """A doped cell whose lowest Γ mode is below -this (meV) is placed again, then fails."""
        return self.max_imaginary_mev if self.max_doped_imaginary_mev is None else self.max_doped_imaginary_mev

    @classmethod
    def from_dict(cls, data: Mapping, *, key: str = "", source: str | None = None) -> GenerateConfig:
        """Build and validate a config from a mapping (e.g. parsed YAML, or :meth:`to_dict`'s).

        Raises
        ------
        DefectnetError
            One line naming the offending key (and ``source``, the file, when given): unknown
            keys, wrong types, bad ranges.
        """
        try:
            return super().from_dict(data, key=key)
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
