"""Blobs of a pristine host and of a force-constant patch, and the site symmetry between patches.

A blob is the compressed array bundle the store keeps and the workers receive
(:func:`pack_pristine` / :func:`unpack_pristine`, :func:`pack_patch` / :func:`unpack_patch`).
:func:`site_equivalence` and :func:`derive_patch` let the client rotate a patch onto a
symmetry-equivalent site instead of computing it again.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
from ase import Atoms

from defectnet.errors import DefectnetError
from defectnet.phonons.host import HostSettings


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


def cache_patches(host, blobs, settings) -> None:
    """Put :func:`pack_patch` blobs into ``host.patch_cache`` under the key
    :func:`~defectnet.phonons.patches.get_patch` looks up (site, element, tier ``settings``)."""
    cache = host.patch_cache
    for blob in blobs:
        p = unpack_patch(blob)
        cache[(p.site, p.element, settings)] = p
