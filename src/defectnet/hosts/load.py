"""Resolve one host: a library name, a CIF/POSCAR path, a Materials Project id, Atoms or a Host."""

from __future__ import annotations

import os
import re
from pathlib import Path

from defectnet.errors import DefectnetError, exception_reason
from defectnet.hosts.library import Host, get_library

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
        raise DefectnetError(
            f"could not read a crystal structure ({exception_reason(exc)}); expected a CIF or POSCAR file",
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
