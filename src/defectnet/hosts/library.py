"""The host library: the :class:`Host` record, the shipped library and host loading.

A host is named anywhere in defectnet in one of four ways, all resolved by :func:`load_host`:

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
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from defectnet.errors import DefectnetError

SOURCES = ("curated", "prototype", "user-file", "materials-project")
LIBRARY_FORMAT = "defectnet-hosts"
LIBRARY_VERSION = 1
_DATA = ("data", "hosts")
LIBRARY_FILE = "library.json.gz"
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


@lru_cache(maxsize=None)
def get_library() -> HostLibrary:
    """The shipped host library (loaded once per process)."""
    hosts, meta = read_hosts(data_path(LIBRARY_FILE))
    cand_path = data_path(CANDIDATES_FILE)
    candidates = read_hosts(cand_path)[0] if cand_path.exists() else []
    return HostLibrary(hosts, candidates, meta)


# -------------------------------------------------------------------- loading one host
_MP_ID = re.compile(r"^mp-\d+$", re.IGNORECASE)
_STRUCTURE_SUFFIXES = (
    ".cif",
    ".vasp",
    ".poscar",
    ".contcar",
    ".xyz",
    ".extxyz",
    ".json",
    ".traj",
    ".in",
    ".cell",
    ".res",
)


def load_host(name_or_path, *, candidates: bool = True) -> Host:
    """Resolve a host given as a library name, a structure file, an mp-id, an Atoms or a Host.

    Parameters
    ----------
    name_or_path : str, os.PathLike, ase.Atoms or Host
        ``"GaAs"`` (case-insensitive, aliases such as ``"GaN-wurtzite"`` accepted),
        ``"path/to/host.cif"`` or a POSCAR, ``"mp-2534"``.
    candidates : bool
        Also accept names of unbuilt prototype candidates (unrelaxed, unchecked).

    Raises
    ------
    DefectnetError
        One line naming the host or file and what was expected.
    """
    if isinstance(name_or_path, Host):
        return name_or_path
    try:
        from ase import Atoms

        if isinstance(name_or_path, Atoms):
            return Host.from_atoms(name_or_path, name=name_or_path.get_chemical_formula(mode="metal"))
    except ImportError:  # pragma: no cover - ase is a hard dependency
        pass
    text = os.fspath(name_or_path).strip()
    if not text:
        raise DefectnetError("empty host name; expected a library name, a CIF/POSCAR path or an mp-id")
    path = Path(text).expanduser()
    if path.is_file():
        return host_from_file(path)
    if _MP_ID.match(text):
        return host_from_materials_project(text.lower())
    if path.is_dir():
        raise DefectnetError("is a directory; expected a CIF/POSCAR file", source=text)
    lib = get_library()
    if text in lib:
        return lib.get(text, candidates=candidates)
    if (
        os.sep in text
        or text.lower().endswith(_STRUCTURE_SUFFIXES)
        or Path(text).name.upper().startswith(("POSCAR", "CONTCAR"))
    ):
        raise DefectnetError("no such file; expected a CIF/POSCAR path or a library host name", source=text)
    return lib.get(text, candidates=candidates)


def host_from_file(path: str | os.PathLike) -> Host:
    """A user's host from a CIF/POSCAR/any ASE-readable file (first frame)."""
    import warnings

    import ase.io

    path = Path(path)
    fmt = "vasp" if path.name.upper().startswith(("POSCAR", "CONTCAR")) else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = ase.io.read(path, index=0, format=fmt)
    except Exception as exc:  # ase raises many types for malformed files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DefectnetError(
            f"could not read a crystal structure ({type(exc).__name__}: {msg}); expected a CIF or POSCAR file",
            source=str(path),
        ) from None
    if len(atoms) == 0:
        raise DefectnetError("the file holds no atoms; expected a CIF or POSCAR crystal structure", source=str(path))
    bad = sorted({s for s, z in zip(atoms.get_chemical_symbols(), atoms.numbers) if z == 0})
    if bad:
        raise DefectnetError(
            f"unknown element {bad[0]!r}; expected element symbols such as 'Ga' or 'As'", source=str(path)
        )
    try:
        return Host.from_atoms(
            atoms,
            name=path.stem,
            source="user-file",
            reference=str(path),
            provenance={"file": str(path)},
        )
    except DefectnetError as exc:
        raise DefectnetError(str(exc), source=str(path)) from None


def host_from_materials_project(mp_id: str) -> Host:
    """A host from the Materials Project (needs the ``mp-api`` package, ``MP_API_KEY`` and a network)."""
    key = os.environ.get("MP_API_KEY")
    try:
        from mp_api.client import MPRester
    except ImportError:
        raise DefectnetError(f"{mp_id}: Materials Project ids need the 'mp-api' package (pip install mp-api)") from None
    if not key:
        raise DefectnetError(f"{mp_id}: set MP_API_KEY to your Materials Project API key to load mp-ids")
    try:
        with MPRester(key) as mpr:
            structure = mpr.get_structure_by_material_id(mp_id, conventional_unit_cell=False)
    except Exception as exc:  # network, auth, unknown id
        raise DefectnetError(
            f"{mp_id}: Materials Project query failed ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    return Host.from_atoms(
        atoms,
        name=mp_id,
        source="materials-project",
        reference=f"Materials Project {mp_id}",
        provenance={"mp_id": mp_id},
    )


# -------------------------------------------------------------------- listing and filtering
def _num(v) -> float:
    return float("nan") if v is None else float(v)


# field name -> (kind, getter); kinds: str, num, bool, set
_FIELDS: dict[str, tuple[str, Callable[[Host], object]]] = {
    "name": ("str", lambda h: h.all_names),
    "formula": ("str", lambda h: h.formula),
    "prototype": ("str", lambda h: h.prototype),
    "family": ("str", lambda h: h.family),
    "source": ("str", lambda h: h.source),
    "element": ("set", lambda h: h.elements),
    "chemsys": ("str", lambda h: "-".join(sorted(h.elements))),
    "arity": ("num", lambda h: h.arity),
    "n_atoms": ("num", lambda h: h.n_atoms),
    "spacegroup": ("num", lambda h: h.spacegroup_number),
    "min_frequency_mev": ("num", lambda h: _num(h.provenance.get("min_frequency_mev"))),
    "relaxed": ("bool", lambda h: h.relaxed),
    "stable": ("bool", lambda h: bool(h.dynamically_stable)),
    "charge_balanced": ("bool", lambda h: h.charge_balanced),
    "passed": ("bool", lambda h: all(h.checks.get(c) for c in HARD_CHECKS)),
}
_FIELD_ALIASES = {
    "elements": "element",
    "el": "element",
    "sg": "spacegroup",
    "natoms": "n_atoms",
    "nelements": "arity",
    "dynamically_stable": "stable",
    "proto": "prototype",
}
_ARITY_WORDS = {"binary": 2, "ternary": 3, "quaternary": 4, "quinary": 5}
_TERM = re.compile(r"^(!?)([A-Za-z_]+)\s*(<=|>=|!=|=|<|>|~)?\s*(.*)$")


def _parse_filter(expr: str) -> list[Callable[[Host], bool]]:
    """Turn ``"element=Ga arity<=3 stable"`` into predicates (all must hold)."""
    from defectnet.elements import check_element

    preds = []
    for raw in re.split(r"[\s,;]+", expr.strip()):
        if not raw:
            continue
        m = _TERM.match(raw)
        if not m:
            raise DefectnetError(f"bad host filter term {raw!r}; expected e.g. 'element=Ga', 'arity<=3' or 'stable'")
        neg, key, op, value = m.groups()
        key = key.lower()
        if op is None:  # bare word: boolean field, source, arity word, or an element symbol
            if key in _ARITY_WORDS:
                key, op, value = "arity", "=", str(_ARITY_WORDS[key])
            elif key in SOURCES:
                key, op, value = "source", "=", key
            elif raw.lstrip("!") in _SYMBOL_SET():
                key, op, value = "element", "=", raw.lstrip("!")
            else:
                key, op, value = key, "=", "true"
        key = _FIELD_ALIASES.get(key, key)
        if key not in _FIELDS:
            raise DefectnetError(f"unknown host filter field {key!r}; expected one of {', '.join(sorted(_FIELDS))}")
        kind, get = _FIELDS[key]
        preds.append(_predicate(kind, get, op, value, key, raw, negate=bool(neg), check_element=check_element))
    return preds


@lru_cache(maxsize=1)
def _SYMBOL_SET() -> frozenset:
    from ase.data import chemical_symbols

    return frozenset(chemical_symbols[1:])


def _predicate(kind, get, op, value, key, raw, *, negate, check_element):
    bad = DefectnetError(f"host filter {raw!r}: operator {op!r} does not apply to {key!r}")
    if kind == "num":
        if key == "spacegroup" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
            if op not in ("=", "!=", "~"):
                raise bad
            sym = value.replace(" ", "").lower()
            base = lambda h: h.spacegroup_symbol.replace(" ", "").lower() == sym  # noqa: E731
            f = base if op != "!=" else (lambda h: not base(h))
        else:
            try:
                x = float(value)
            except ValueError:
                raise DefectnetError(f"host filter {raw!r}: {key!r} needs a number") from None
            ops = {
                "=": np.equal,
                "!=": np.not_equal,
                "<": np.less,
                "<=": np.less_equal,
                ">": np.greater,
                ">=": np.greater_equal,
            }
            if op not in ops:
                raise bad
            f = lambda h: bool(ops[op](get(h), x))  # noqa: E731
    elif kind == "bool":
        if op not in ("=", "!="):
            raise bad
        truth = value.lower() in ("1", "true", "yes", "y")
        if value.lower() not in ("1", "0", "true", "false", "yes", "no", "y", "n"):
            raise DefectnetError(f"host filter {raw!r}: {key!r} is true or false")
        f = lambda h: bool(get(h)) == (truth if op == "=" else not truth)  # noqa: E731
    elif kind == "set":
        wanted = [check_element(v) for v in value.split("|")]
        if op not in ("=", "!="):
            raise bad
        f = lambda h: any(w in get(h) for w in wanted) == (op == "=")  # noqa: E731
    else:  # str
        options = [v.lower() for v in value.split("|")]

        def values(h):
            v = get(h)
            return [x.lower() for x in (v if isinstance(v, tuple) else (v,))]

        if op == "~":
            f = lambda h: any(o in v for o in options for v in values(h))  # noqa: E731
        elif op in ("=", "!="):
            f = lambda h: any(o == v for o in options for v in values(h)) == (op == "=")  # noqa: E731
        else:
            raise bad
    return (lambda h: not f(h)) if negate else f


def list_hosts(filter_expr: str | None = None, *, candidates: bool = False) -> list[Host]:
    """Library hosts matching a filter expression, in library order.

    The expression is whitespace/comma-separated terms that must all hold: ``field op value``
    with ``op`` one of ``= != < <= > >= ~`` (``~`` = substring), ``|`` between alternatives,
    a leading ``!`` negates. Fields: name, formula, prototype, family, source, element,
    chemsys, arity, n_atoms, spacegroup (number or symbol), min_frequency_mev, relaxed,
    stable, charge_balanced, passed. Bare words: a boolean field (``stable``), a source
    (``curated``), ``binary``…``quinary``, or an element symbol (``O``).

    Examples: ``"element=Ga|In arity=2"``, ``"prototype=perovskite stable"``, ``"curated !relaxed"``.

    Parameters
    ----------
    candidates : bool
        Also list the unbuilt prototype candidates.
    """
    lib = get_library()
    pool = lib.hosts + (lib.candidates if candidates else [])
    if not filter_expr:
        return list(pool)
    preds = _parse_filter(filter_expr)
    return [h for h in pool if all(p(h) for p in preds)]


def _lattice_parameters(cell: np.ndarray) -> tuple[float, ...]:
    from ase.geometry import cell_to_cellpar

    return tuple(float(x) for x in cell_to_cellpar(cell))


def format_host(host: Host) -> str:
    """A multi-line, human-readable description of one host (``defectnet hosts show``)."""
    a, b, c, al, be, ga = _lattice_parameters(host.cell)
    prov = host.provenance
    lines = [
        f"{host.name}  ({host.formula}, {host.spacegroup_symbol} #{host.spacegroup_number})",
        f"  prototype    {host.prototype}  [{host.family}]",
        f"  source       {host.source}" + (f" — {host.reference}" if host.reference else ""),
    ]
    if host.aliases:
        lines.append(f"  aliases      {', '.join(host.aliases)}")
    lines += [
        f"  cell         a={a:.4f} b={b:.4f} c={c:.4f} Å  α={al:.2f} β={be:.2f} γ={ga:.2f}°"
        f"  (primitive, {host.n_atoms} atoms)",
        f"  volume       {host.volume_per_atom:.3f} Å³/atom",
    ]
    if host.oxidation_states:
        ox = ", ".join(f"{el}{host.oxidation_states[el]:+d}" for el in host.elements if el in host.oxidation_states)
        lines.append(f"  oxidation    {ox}")
    else:
        lines.append("  oxidation    not charge balanced by formal states")
    if host.decoration:
        lines.append("  decoration   " + ", ".join(f"{k}→{v}" for k, v in host.decoration.items()))
    pot = prov.get("potential")
    if pot:
        lines.append(
            f"  potential    {pot.get('name')} ({pot.get('package')} {pot.get('version')}, {pot.get('model')})"
        )
    unrelaxed = {"curated": "no (experimental structure)", "prototype": "no (unbuilt candidate: scaled prototype)"}
    lines.append(f"  relaxed      {'yes' if host.relaxed else unrelaxed.get(host.source, 'no (as given)')}")
    checks = host.checks
    if checks:

        def mark(v):
            return "✓" if v is True else ("✗" if v is False else "–")

        order = [c for c in HARD_CHECKS if c in checks] + [c for c in checks if c not in HARD_CHECKS]
        lines.append("  checks       " + "  ".join(f"{mark(checks[k])} {k}" for k in order))
    extra = [
        (k, prov[k])
        for k in (
            "n_imaginary",
            "min_frequency_mev",
            "max_frequency_mev",
            "bulk_modulus_gpa",
            "min_elastic_eigenvalue_gpa",
            "volume_change",
        )
        if k in prov
    ]
    if extra:
        lines.append(
            "  phonons      " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra)
        )
    lines.append(
        "  sites        "
        + "; ".join(f"{s} ({x:.4f} {y:.4f} {z:.4f})" for s, (x, y, z) in zip(host.species, host.positions))
        if host.n_atoms <= 12
        else f"  sites        {host.n_atoms} sites: {' '.join(host.species)}"
    )
    return "\n".join(lines)


def format_table(hosts: Iterable[Host]) -> str:
    """One line per host (``defectnet hosts list``)."""
    rows = [("name", "formula", "spacegroup", "atoms", "prototype", "source", "relaxed", "stable")]
    for h in hosts:
        stable = h.dynamically_stable
        rows.append(
            (
                h.name,
                h.formula,
                f"{h.spacegroup_symbol} ({h.spacegroup_number})",
                str(h.n_atoms),
                h.prototype,
                h.source,
                "yes" if h.relaxed else "no",
                "?" if stable is None else ("yes" if stable else "NO"),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
