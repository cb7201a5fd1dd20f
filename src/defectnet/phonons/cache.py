"""On-disk cache of what the engine computes for a host: its force constants and its dopant patches.

A host's relaxation and force constants cost minutes, each dopant patch another minute or
more; `simulate`, `basis` and `predict` on the same host need the same ones. They are kept
under ``$DEFECTNET_CACHE`` (default ``~/.cache/defectnet``; ``DEFECTNET_CACHE=off`` turns the
cache off) in one folder per host key: a hash of what determines them — the host's standard
primitive cell as given (before relaxation), the :class:`~defectnet.phonons.host.HostSettings`,
the potential's package and model version, and the patch algorithm. A patch file is further
keyed by the primitive site, the dopant and the tier settings; a cluster patch
(:mod:`defectnet.phonons.clusters`) by the cluster's canonical key, the tier settings and the
cell-width step, under ``clusters/``. Files are written atomically,
so a killed run leaves whole entries or none; an unreadable entry is computed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

#: Value of ``$DEFECTNET_CACHE`` that turns the cache off.
OFF = "off"


def cache_dir() -> Path | None:
    """The cache's root: ``$DEFECTNET_CACHE`` or ``~/.cache/defectnet``; None when turned off."""
    value = os.environ.get("DEFECTNET_CACHE")
    if value and value.strip().lower() == OFF:
        return None
    return Path(value) if value else Path.home() / ".cache" / "defectnet"


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def host_key(primitive, settings) -> str:
    """Key of a host: its standard primitive cell as given (ase.Atoms), its settings and potential."""
    from defectnet.phonons.patches import PATCH_ALGORITHM
    from defectnet.phonons.potentials import potential_info

    return _digest({
        "numbers": primitive.numbers.tolist(), "cell": np.round(primitive.cell.array, 6).tolist(),
        "positions": np.round(primitive.get_scaled_positions(), 6).tolist(), "settings": settings.to_dict(),
        "potential": potential_info(settings.potential).to_dict(), "patch_algorithm": PATCH_ALGORITHM,
    })


class HostCache:
    """The cache folder of one host: ``pristine.bin`` and ``patches/<site>-<El>-<tier key>.bin``."""

    def __init__(self, root: Path, key: str):
        self.path = Path(root) / "hosts" / key

    @classmethod
    def for_host(cls, primitive, settings) -> HostCache | None:
        """The cache of ``primitive`` under ``settings``, or None when the cache is off."""
        root = cache_dir()
        return None if root is None else cls(root, host_key(primitive, settings))

    def load_pristine(self, settings):
        """(PristineHost, None) from the cache (no spectrum: the caller builds it), or None."""
        from defectnet.data.blobs import unpack_pristine

        blob = _read(self.path / "pristine.bin")
        if blob is None:
            return None
        try:
            return unpack_pristine(blob, settings)[0]
        except (KeyError, ValueError, OSError):
            return None  # a file of another format: compute again

    def save_pristine(self, host) -> None:
        from defectnet.data.blobs import pack_pristine

        _write(self.path / "pristine.bin", pack_pristine(host, np.eye(3, dtype=int)))

    def _patch_path(self, site: int, element: str, tier_settings) -> Path:
        return self.path / "patches" / f"{site}-{element}-{_digest(tier_settings.to_dict())}.bin"

    def load_patch(self, site: int, element: str, tier_settings):
        from defectnet.data.blobs import unpack_patch
        from defectnet.errors import DefectnetError

        blob = _read(self._patch_path(site, element, tier_settings))
        if blob is None:
            return None
        try:
            return unpack_patch(blob)
        except (KeyError, ValueError, OSError, DefectnetError):
            return None

    def save_patch(self, patch, tier_settings) -> None:
        from defectnet.data.blobs import pack_patch

        _write(self._patch_path(patch.site, patch.element, tier_settings), pack_patch(patch))


    def _cluster_path(self, key, tier_settings, step_ang: float) -> Path:
        return self.path / "clusters" / f"{_digest([key, tier_settings.to_dict(), step_ang])}.npz"

    def load_cluster(self, key, tier_settings, step_ang: float):
        """The :class:`~defectnet.phonons.clusters.ClusterPatch` of canonical ``key``, or None."""
        import io

        from defectnet.phonons.clusters import ClusterPatch

        blob = _read(self._cluster_path(key, tier_settings, step_ang))
        if blob is None:
            return None
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                if str(z["key"]) != json.dumps(key, default=str):  # a digest collision, or another format
                    return None
                return ClusterPatch(key=key, elements=tuple(str(e) for e in z["elements"]),
                                    cell_atoms=int(z["cell_atoms"]), force_calls=int(z["force_calls"]),
                                    **{f: z[f] for f in CLUSTER_ARRAYS})
        except (KeyError, ValueError, OSError):
            return None

    def save_cluster(self, patch, tier_settings, step_ang: float) -> None:
        import io

        buf = io.BytesIO()
        np.savez(buf, key=np.array(json.dumps(patch.key, default=str)), elements=np.array(patch.elements, dtype=str),
                 cell_atoms=patch.cell_atoms, force_calls=patch.force_calls,
                 **{f: getattr(patch, f) for f in CLUSTER_ARRAYS})
        _write(self._cluster_path(patch.key, tier_settings, step_ang), buf.getvalue())


#: The array fields of a cluster patch, as stored.
CLUSTER_ARRAYS = ("members_rel_ang", "rel_ang", "cluster", "delta", "sphere_rel_ang", "displacement_ang")


def cached_pristine(atoms, settings=None, *, grid=None, resolution=None, fwhm_mev: float = 1.0,
                    progress: bool = False):
    """:func:`~defectnet.phonons.host.compute_pristine` through the disk cache.

    The relaxed host and its force constants are read from the cache when they are there,
    else computed and kept; the q-mesh spectrum is always built for ``grid`` and the
    broadening asked. The host returned keeps its patches on disk too
    (:func:`~defectnet.phonons.patches.get_patch` reads and writes them there).
    """
    from defectnet.grid import DEFAULT_GRID
    from defectnet.phonons.host import HostSettings, compute_pristine, standardize_primitive, with_mesh_spectrum

    settings = settings or HostSettings()
    grid = grid or DEFAULT_GRID
    cache = HostCache.for_host(standardize_primitive(atoms, settings.symprec)[0], settings)
    host = cache.load_pristine(settings) if cache else None
    if host is None:
        host = compute_pristine(atoms, settings, grid=grid, resolution=resolution, fwhm_mev=fwhm_mev, progress=progress)
        if cache:
            cache.save_pristine(host)
    else:
        host.timings["cached"] = True
        with_mesh_spectrum(host, grid=grid, resolution=resolution, fwhm_mev=fwhm_mev)
    host.disk_cache = cache
    return host


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _write(path: Path, blob: bytes) -> None:
    """Write atomically; a cache that cannot be written (read-only home) is skipped, not an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        tmp.replace(path)
    except OSError:
        pass
