"""The host library: the :class:`Host` record and the shipped library.

A host is named anywhere in defectnet in one of four ways, all resolved by
:func:`defectnet.hosts.load.load_host`:

* a library name, case-insensitive: ``GaAs``, ``GaN-wurtzite``, ``ZnO-rocksalt``. Well-known
  systems carry the plain formula for their common polymorph (``GaN`` is wurtzite, ``ZnS``
  zincblende, ``TiO2`` rutile); every host also answers to ``<formula>-<prototype>``;
* a CIF/POSCAR (anything ``ase.io.read`` understands) path;
* a Materials Project id ``mp-149`` (needs ``mp-api`` and ``MP_API_KEY``; never used by tests);
* an ``ase.Atoms`` or a :class:`Host` (passed through).

The package ships two files under ``defectnet/data/hosts/``:

``library.json.gz``
    the hosts: curated experimental structures (always present; unrelaxed until a build has
    relaxed them) and the prototype-derived hosts that passed every check of
    ``defectnet hosts build``;
``candidates.json.gz``
    every decorated prototype candidate (unrelaxed, unchecked), so a candidate can be
    looked at or loaded by name before it has been built.
"""

from __future__ import annotations

import difflib
import gzip
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable

import numpy as np

from defectnet.errors import DefectnetError

SOURCES = ("curated", "prototype", "user-file", "materials-project")
LIBRARY_FORMAT = "defectnet-hosts"
LIBRARY_VERSION = 1
_DATA = ("data", "hosts")
LIBRARY_FILE = "library.json.gz"
#: Environment variable naming a library file to use instead of the shipped one (what
#: ``defectnet hosts build --finalize`` writes; the installed package is never written to).
LIBRARY_ENV = "DEFECTNET_LIBRARY"
CANDIDATES_FILE = "candidates.json.gz"

#: Checks a prototype host must pass to enter the library (all recorded in ``provenance["checks"]``).
HARD_CHECKS = (
    "charge_balanced",
    "min_distance_ok",
    "relaxed",
    "volume_change_ok",
    "symmetry_kept",
    "mechanically_stable",
    "dynamically_stable",
)


@dataclass(frozen=True, eq=False)
class Host:
    """One crystal host: its primitive cell, what it is and where it came from.

    Attributes
    ----------
    name : str
        Unique library name (``GaAs``, ``GaN-wurtzite``).
    formula : str
        Reduced formula (pymatgen's element order).
    elements : tuple of str
        Distinct elements, in formula order.
    n_atoms : int
        Atoms in the primitive cell.
    spacegroup_number, spacegroup_symbol : int, str
        International number and Hermann–Mauguin symbol (spglib, symprec 1e-3 Å).
    prototype : str
        Prototype key (``zincblende``, ``kesterite``; ``user`` for a user's file).
    family : str
        Chemical family (``III-V``, ``perovskite``, ``spinel``, ...).
    decoration : dict
        Prototype site label → element.
    oxidation_states : dict or None
        Element → formal oxidation state when the host is charge balanced, else None.
    cell : (3, 3) ndarray
        Lattice vectors as rows, Å.
    positions : (n_atoms, 3) ndarray
        Fractional coordinates.
    species : tuple of str
        Element of each site.
    source : str
        ``curated`` | ``prototype`` | ``user-file`` | ``materials-project``.
    provenance : dict
        How the structure was made and checked: ``potential`` (name, model, version),
        ``relaxed``, ``checks`` (check name → bool or None when not run), ``n_imaginary``,
        ``min_frequency_mev``, ...
    aliases : tuple of str
        Other names the host answers to.
    reference : str
        Where the structure comes from (experimental reference or prototype).
    """

    name: str
    formula: str
    elements: tuple[str, ...]
    n_atoms: int
    spacegroup_number: int
    spacegroup_symbol: str
    prototype: str
    family: str
    decoration: dict
    oxidation_states: dict | None
    cell: np.ndarray
    positions: np.ndarray
    species: tuple[str, ...]
    source: str
    provenance: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    reference: str = ""

    def __post_init__(self):
        cell = np.array(self.cell, dtype=float).reshape(3, 3)
        pos = np.array(self.positions, dtype=float).reshape(-1, 3)
        for a in (cell, pos):
            a.setflags(write=False)
        object.__setattr__(self, "cell", cell)
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "species", tuple(self.species))
        object.__setattr__(self, "elements", tuple(self.elements))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        if len(self.species) != len(pos):
            raise DefectnetError(f"host {self.name!r}: {len(self.species)} species for {len(pos)} positions")
        if self.source not in SOURCES:
            raise DefectnetError(f"host {self.name!r}: unknown source {self.source!r}; expected one of {SOURCES}")

    # identity is the name: two records of the same host compare equal
    def __eq__(self, other):
        return isinstance(other, Host) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        sg = f"{self.spacegroup_symbol} ({self.spacegroup_number})"
        return f"Host({self.name!r}, {self.formula}, {sg}, {self.n_atoms} atoms, {self.source})"

    # ---------------------------------------------------------------- derived
    @property
    def arity(self) -> int:
        """Number of distinct elements (2 = binary, ..., 5 = quinary)."""
        return len(self.elements)

    @property
    def checks(self) -> dict:
        return dict(self.provenance.get("checks", {}))

    @property
    def relaxed(self) -> bool:
        return bool(self.provenance.get("relaxed", False))

    @property
    def dynamically_stable(self) -> bool | None:
        return self.checks.get("dynamically_stable")

    @property
    def charge_balanced(self) -> bool:
        return self.oxidation_states is not None

    @property
    def volume_per_atom(self) -> float:
        """Å³ per atom."""
        return abs(float(np.linalg.det(self.cell))) / self.n_atoms

    @property
    def all_names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def to_atoms(self):
        """The primitive cell as an ``ase.Atoms`` (periodic, standard atomic masses)."""
        from ase import Atoms

        return Atoms(list(self.species), cell=np.array(self.cell), scaled_positions=np.array(self.positions), pbc=True)

    def with_structure(self, atoms, **changes) -> "Host":
        """A copy with the structure of ``atoms`` (e.g. after relaxation) and other fields changed."""
        sg_number, sg_symbol = spacegroup_of(atoms)
        d = self.to_dict()
        d.update(
            cell=atoms.cell.array.tolist(),
            positions=atoms.get_scaled_positions(wrap=True).tolist(),
            species=atoms.get_chemical_symbols(),
            n_atoms=len(atoms),
            spacegroup_number=sg_number,
            spacegroup_symbol=sg_symbol,
        )
        d.update(changes)
        return Host.from_dict(d)

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict:
        """Plain JSON-able dict; cell rounded to 1e-5 Å and positions to 1e-6 (compact files)."""
        return {
            "name": self.name,
            "formula": self.formula,
            "elements": list(self.elements),
            "n_atoms": int(self.n_atoms),
            "spacegroup_number": int(self.spacegroup_number),
            "spacegroup_symbol": self.spacegroup_symbol,
            "prototype": self.prototype,
            "family": self.family,
            "decoration": dict(self.decoration),
            "oxidation_states": None
            if self.oxidation_states is None
            else {k: int(v) for k, v in self.oxidation_states.items()},
            "cell": np.round(self.cell, 5).tolist(),
            "positions": (np.mod(np.round(self.positions, 6), 1.0) + 0.0).tolist(),  # + 0.0: no -0.0
            "species": list(self.species),
            "source": self.source,
            "provenance": _jsonable(self.provenance),
            "aliases": list(self.aliases),
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Host":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise DefectnetError(f"host record has unknown keys {sorted(unknown)}")
        missing = {"name", "formula", "cell", "positions", "species", "source"} - set(d)
        if missing:
            raise DefectnetError(f"host record {d.get('name', '?')!r} lacks {sorted(missing)}")
        d = dict(d)
        d.setdefault("elements", _formula_elements(d["species"], d.get("oxidation_states")))
        d.setdefault("n_atoms", len(d["species"]))
        for key, default in (
            ("spacegroup_number", 0),
            ("spacegroup_symbol", "?"),
            ("prototype", "unknown"),
            ("family", ""),
            ("decoration", {}),
            ("oxidation_states", None),
        ):
            d.setdefault(key, default)
        return cls(**d)

    @classmethod
    def from_atoms(
        cls,
        atoms,
        *,
        name: str,
        source: str = "user-file",
        prototype: str = "user",
        family: str = "",
        reference: str = "",
        oxidation_states: dict | None | str = "guess",
        provenance: dict | None = None,
        decoration: dict | None = None,
        aliases: Iterable[str] = (),
        spacegroup: tuple[int, str] | None = None,
    ) -> "Host":
        """A host from any periodic ``ase.Atoms`` (elements checked, formula and space group derived).

        ``oxidation_states="guess"`` asks pymatgen for a charge-balanced assignment (None if none);
        ``spacegroup`` skips the spglib call when the caller knows it.
        """
        from defectnet.elements import check_element

        symbols = atoms.get_chemical_symbols()
        for s in set(symbols):
            check_element(s)
        if not all(atoms.pbc) or atoms.cell.rank < 3 or atoms.get_volume() < 1e-6:
            raise DefectnetError(f"host {name!r} is not a 3D periodic crystal (need a full unit cell)")
        if isinstance(oxidation_states, str):
            oxidation_states = guess_oxidation_states(symbols)
        formula = reduced_formula(symbols, oxidation_states)
        sg_number, sg_symbol = spacegroup or spacegroup_of(atoms)
        prov = {"relaxed": False, "checks": {"charge_balanced": oxidation_states is not None}}
        prov.update(provenance or {})
        return cls(
            name=name,
            formula=formula,
            elements=_formula_elements(symbols, oxidation_states),
            n_atoms=len(atoms),
            spacegroup_number=sg_number,
            spacegroup_symbol=sg_symbol,
            prototype=prototype,
            family=family,
            decoration=dict(decoration or {}),
            oxidation_states=oxidation_states,
            cell=atoms.cell.array,
            positions=atoms.get_scaled_positions(wrap=True),
            species=tuple(symbols),
            source=source,
            provenance=prov,
            aliases=tuple(aliases),
            reference=reference,
        )


# -------------------------------------------------------------------- small chemistry helpers
def _jsonable(obj):
    """Numpy scalars/arrays → plain Python, recursively (provenance dicts)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return round(float(obj), 6)
    if isinstance(obj, float):
        return round(obj, 6)
    return obj


def _formula_elements(symbols: Iterable[str], oxidation_states: dict | None = None) -> tuple[str, ...]:
    """Elements in the order chemists write them.

    With oxidation states: cations by increasing state (then electronegativity), then anions
    by decreasing electronegativity — ``CuInSe2``, ``Cu2ZnSnS4``, ``SrTiO3``, ``PbTe``,
    ``BaFCl``. Without: by increasing electronegativity (``MgB2``, ``ZrNiSn``).
    """
    from pymatgen.core import Element

    def chi(el):
        x = Element(el).X
        return x if np.isfinite(x) else 0.0

    els = sorted(set(symbols))
    if not oxidation_states:
        return tuple(sorted(els, key=lambda e: (chi(e), e)))
    cat = [e for e in els if oxidation_states.get(e, 0) >= 0]
    an = [e for e in els if oxidation_states.get(e, 0) < 0]
    return tuple(
        sorted(cat, key=lambda e: (oxidation_states.get(e, 0), chi(e), e)) + sorted(an, key=lambda e: (-chi(e), e))
    )


def reduced_formula(symbols: Iterable[str], oxidation_states: dict | None = None) -> str:
    """Reduced formula in :func:`_formula_elements` order (``GaAs``, ``SrTiO3``, ``Cu2ZnSnS4``)."""
    from collections import Counter
    from functools import reduce
    from math import gcd

    counts = Counter(symbols)
    g = reduce(gcd, counts.values())
    return "".join(
        f"{el}{counts[el] // g if counts[el] // g > 1 else ''}" for el in _formula_elements(counts, oxidation_states)
    )


def guess_oxidation_states(symbols: Iterable[str], max_atoms: int = 60) -> dict | None:
    """A charge-balanced {element: state} from pymatgen's ICSD statistics, or None.

    Mixed valence (two states of one element) is reported as None: the record then says
    the host is not charge balanced by simple formal states.
    """
    from collections import Counter

    from pymatgen.core import Composition

    comp = Composition(Counter(symbols))
    if comp.num_atoms > max_atoms or len(comp) < 2:
        return None
    try:
        guesses = comp.reduced_composition.oxi_state_guesses(max_sites=-max_atoms)
    except Exception:  # pymatgen raises a variety of errors for exotic compositions
        return None
    for g in guesses:
        if all(float(v).is_integer() for v in g.values()):
            return {k: int(v) for k, v in g.items()}
    return None


def spacegroup_of(atoms, symprec: float = 1e-3) -> tuple[int, str]:
    """(number, Hermann–Mauguin symbol) of ``atoms`` from spglib; (0, '?') if spglib fails."""
    import spglib

    cell = (atoms.cell.array, atoms.get_scaled_positions(wrap=True), atoms.get_atomic_numbers())
    sg = spglib.get_spacegroup(cell, symprec=symprec)
    if not sg:
        return 0, "?"
    symbol, number = sg.rsplit(" ", 1)
    return int(number.strip("()")), symbol


# -------------------------------------------------------------------- the shipped library
def data_path(filename: str) -> Path:
    """Path of a file in the package's ``data/hosts`` folder."""
    return Path(str(resources.files("defectnet").joinpath(*_DATA, filename)))


def write_hosts(path: str | os.PathLike, hosts: Iterable[Host], *, meta: dict | None = None) -> Path:
    """Write hosts as compact, deterministic gzipped JSON (one host per line inside the array)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hosts = list(hosts)
    names = [h.name for h in hosts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DefectnetError(f"duplicate host names {dupes[:5]} when writing {path}")
    head = {"format": LIBRARY_FORMAT, "version": LIBRARY_VERSION, "meta": _jsonable(meta or {}), "n_hosts": len(hosts)}
    lines = [json.dumps(h.to_dict(), separators=(",", ":"), sort_keys=True) for h in hosts]
    text = json.dumps(head, sort_keys=True)[:-1] + ',"hosts":[\n' + ",\n".join(lines) + "\n]}\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    # mtime=0: identical content gives identical bytes (clean diffs of the committed data)
    with open(tmp, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.encode())
    os.replace(tmp, path)
    return path


def read_hosts(path: str | os.PathLike) -> tuple[list[Host], dict]:
    """Read a host file written by :func:`write_hosts`; returns (hosts, meta)."""
    path = Path(path)
    try:
        with gzip.open(path, "rt") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise DefectnetError("host library file not found", source=str(path)) from None
    except (OSError, json.JSONDecodeError, EOFError) as exc:
        raise DefectnetError(f"not a readable host library ({exc})", source=str(path)) from None
    if doc.get("format") != LIBRARY_FORMAT:
        raise DefectnetError(f"not a defectnet host file (format {doc.get('format')!r})", source=str(path))
    return [Host.from_dict(d) for d in doc["hosts"]], doc.get("meta", {})


class HostLibrary:
    """Hosts by name with case-insensitive and alias lookup, plus the candidate list.

    A candidate that the build has promoted into the library (same name) is listed once,
    as the built host.
    """

    def __init__(self, hosts: Iterable[Host], candidates: Iterable[Host] = (), meta: dict | None = None):
        self.hosts = list(hosts)
        built = {h.name.lower() for h in self.hosts}
        self.candidates = [c for c in candidates if c.name.lower() not in built]
        self.meta = dict(meta or {})
        self._index: dict[str, Host] = {}
        self._cand_index: dict[str, Host] = {}
        for h in self.hosts:
            for n in h.all_names:
                # the first claim wins: curated hosts come first in the file
                self._index.setdefault(n.lower(), h)
        for h in self.candidates:
            for n in h.all_names:
                if n.lower() not in self._index:
                    self._cand_index.setdefault(n.lower(), h)

    def __len__(self) -> int:
        return len(self.hosts)

    def __iter__(self):
        return iter(self.hosts)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._index or name.lower() in self._cand_index

    def get(self, name: str, *, candidates: bool = True) -> Host:
        key = name.strip().lower()
        if key in self._index:
            return self._index[key]
        if candidates and key in self._cand_index:
            return self._cand_index[key]
        raise DefectnetError(self._unknown_message(name))

    def names(self, *, candidates: bool = False) -> list[str]:
        pool = self.hosts + (self.candidates if candidates else [])
        return [n for h in pool for n in h.all_names]

    def _unknown_message(self, name: str) -> str:
        pool = {n.lower(): n for n in self.names(candidates=True)}
        close = difflib.get_close_matches(name.lower(), list(pool), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(pool[c]) for c in close)}?" if close else ""
        return (
            f"unknown host {name!r}{hint} (expected a library name such as 'GaAs' or 'GaN-wurtzite', "
            f"a CIF/POSCAR path, or an mp-id; see 'defectnet hosts list')"
        )


def library_path() -> Path:
    """The library file in use: ``$DEFECTNET_LIBRARY`` when set, else the shipped one."""
    return Path(os.environ.get(LIBRARY_ENV) or data_path(LIBRARY_FILE))


def user_library_path() -> Path:
    """Where ``hosts build --finalize`` writes by default: ``library.json.gz`` in the user cache's root."""
    from defectnet.phonons.cache import cache_dir

    return (cache_dir() or Path.home() / ".cache" / "defectnet") / LIBRARY_FILE


@lru_cache(maxsize=None)
def get_library() -> HostLibrary:
    """The host library in use (:func:`library_path`; loaded once per process)."""
    hosts, meta = read_hosts(library_path())
    cand_path = data_path(CANDIDATES_FILE)
    candidates = read_hosts(cand_path)[0] if cand_path.exists() else []
    return HostLibrary(hosts, candidates, meta)
