"""Export of a generation store to the training file (:mod:`defectnet.data.training_file`).

A store's successful samples become the file's contract arrays (:func:`training_arrays`), written
by :func:`export` (``defectnet dataset export``), optionally leaving out the samples that earlier
chunks hold (:func:`exported_samples`) and listing the hosts exported mid-run
(:func:`incomplete_hosts`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from defectnet.data.training_file import (DATASETS, TRAINING_SCHEMA_VERSION, training_file_paths, training_format,
                                          write_training_arrays)
from defectnet.errors import DefectnetError


def _host_elements() -> tuple[str, ...]:
    from ase.data import chemical_symbols

    return tuple(chemical_symbols[1:95])


def training_arrays(store) -> tuple[dict[str, np.ndarray], dict]:
    """All successful samples of an open :class:`~defectnet.data.store.Store` as contract arrays.

    Returns
    -------
    arrays : dict
        The datasets of the contract (``host_names`` as a list of str).
    attrs : dict
        The attributes, JSON values already encoded as strings.
    """
    import defectnet
    from defectnet.data.store import unpack_arrays
    from defectnet.elements import DOPANTS
    from defectnet.grid import EnergyGrid

    meta = store.meta()
    if "grid" not in meta:
        raise DefectnetError("the store holds no generation config yet (nothing was generated)", source=str(store.path))
    grid = EnergyGrid.from_dict(meta["grid"])
    host_elements = _host_elements()
    z_of = {el: i for i, el in enumerate(host_elements)}
    d_of = {el: i for i, el in enumerate(DOPANTS)}

    hosts = {}
    for hid, name, comp, blob in store.conn.execute(
            "SELECT id, name, composition, spectra FROM hosts WHERE status = 'ok' ORDER BY name"):
        a = unpack_arrays(blob)
        c = np.zeros(len(host_elements), np.float32)
        for el, x in json.loads(comp).items():
            if el not in z_of:
                raise DefectnetError(f"host {name}: element {el} is beyond Z = 94 of the composition vector")
            c[z_of[el]] = x
        hosts[hid] = {"name": name, "composition": c, **a}
    names = sorted(h["name"] for h in hosts.values())
    index = {n: i for i, n in enumerate(names)}

    cols = {k: [] for k in DATASETS}
    has_host_pdos = True
    for r in store.samples("ok", blobs=True, order="host, sample_index"):
        h = hosts.get(r["host_id"])
        if h is None:
            continue  # belongs to a host that is not ok (the integrity check reports it)
        a = unpack_arrays(r["arrays"])
        t, m, site = _sample_labels(r, d_of, z_of)
        host_pdos = h["host_pdos"]
        if host_pdos.shape != (grid.n_bins,):
            has_host_pdos = False
            host_pdos = np.zeros(grid.n_bins, np.float32)
        for key, value in (("pristine", h["pristine"]), ("doped", a["doped"]), ("pristine_gpdos", h["pristine_gpdos"]),
                           ("doped_gpdos", a["doped_gpdos"]), ("host_pdos", host_pdos), ("targets", t),
                           ("candidates", m), ("composition", h["composition"]), ("host_id", index[h["name"]]),
                           ("n_dopants", r["n_dopants"]), ("sample_id", r["id"]),
                           ("supercell_atoms", r["supercell_atoms"]), ("dopant_site", site)):
            cols[key].append(value)
    dims = {"B": grid.n_bins, "D": len(DOPANTS), "H": len(host_elements)}
    arrays = {}
    for key, (trail, dtype) in DATASETS.items():
        shape = (len(cols[key]),) + tuple(dims[t] for t in trail)
        arrays[key] = np.array(cols[key], dtype=dtype).reshape(shape)
    if not has_host_pdos:
        del arrays["host_pdos"]
    arrays["host_names"] = names
    attrs = {
        "schema_version": TRAINING_SCHEMA_VERSION,
        "grid": json.dumps(grid.to_dict(), sort_keys=True),
        "grid_id": grid.grid_id,
        "vocabulary": json.dumps(list(DOPANTS)),
        "host_elements": json.dumps(list(host_elements)),
        "potential": meta["potential"]["name"] if isinstance(meta.get("potential"), dict) else str(meta.get("potential")),
        "tier": str(meta.get("tier")),
        "broadening": json.dumps(meta.get("broadening", {}), sort_keys=True),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "defectnet_version": defectnet.__version__,
        "config": json.dumps(meta.get("config", {}), sort_keys=True),
    }
    return arrays, attrs


def _sample_labels(row, d_of, z_of) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(targets float32 (D,), candidates bool (D,), dopant_site int8 (D,)) of a store's sample row;
    ``d_of``, ``z_of``: column of each dopant element, index of each host element."""
    t = np.zeros(len(d_of), np.float32)
    for el, x in row["concentrations"].items():
        t[d_of[el]] = x
    m = np.zeros(len(d_of), bool)
    m[[d_of[el] for el in row["candidates"]]] = True
    site = np.full(len(d_of), -1, np.int8)
    for el, on, *_ in row["dopants"]:  # a sample draws each element once (sampling.sample_scenario)
        if on not in z_of:
            raise DefectnetError(f"host {row['host']}: site {on} of {el} is beyond Z = 94 of the host elements")
        site[d_of[el]] = z_of[on]
    return t, m, site


def export(store_path, out, fmt: str | None = None, *, compact: bool = False, skip_in=()) -> dict:
    """Write a store's successful samples to the training file ``out``.

    Parameters
    ----------
    store_path : str or Path
        The SQLite store.
    out : str or Path
        Output file; written to a temporary name and renamed, so a reader never sees half a file.
    fmt : {'h5', 'npz'}, optional
        Default from the suffix (``.h5``/``.hdf5`` → HDF5, ``.npz`` → NPZ).
    compact : bool
        Write the compact layout (HDF5; see :mod:`defectnet.data.training_file`): ~1.3 kB per sample, for
        committing a dataset to a repository.
    skip_in : path or iterable of paths
        Training files (or directories of them) already written: samples they hold (same
        host, ``sample_id`` and generation seed) are left out, so a store that went on
        after an earlier export gives a new chunk with no sample twice.

    Returns
    -------
    dict
        ``{"path", "n_samples", "n_hosts", "format", "bytes", "n_skipped"}``.
    """
    from defectnet.data.store import Store

    out = Path(out)
    fmt = training_format(out, fmt, compact)  # before the store is read: a bad name fails at once
    with Store(store_path, "r") as store:
        arrays, attrs = training_arrays(store)
        attrs["failed_hosts"] = json.dumps({h["name"]: h["reason"] for h in store.hosts("failed")}, sort_keys=True)
        attrs["incomplete_hosts"] = json.dumps(incomplete_hosts(store))
        # failed samples, id → reason: a generation resumed from this file (generate --skip-in) does not redo them
        failed = {}
        for r in store.samples("failed"):
            failed.setdefault(r["host"], {})[str(r["id"])] = r["reason"]
        attrs["failed_samples"] = json.dumps(failed, sort_keys=True)
        # Done by the store even when --skip-in leaves none of their samples in this file
        # (all in earlier chunks): without it a host an earlier chunk exported mid-run is
        # never marked done and every later chunk computes it again.
        attrs["complete_hosts"] = json.dumps(sorted({h["name"] for h in store.hosts("ok")}
                                                    - set(json.loads(attrs["incomplete_hosts"]))))
    n_skipped = 0
    if skip_in:
        seen = exported_samples(skip_in, seed=json.loads(attrs["config"]).get("seed"))
        names = arrays["host_names"]
        keep = np.array([(names[h], s) not in seen for h, s in zip(arrays["host_id"], arrays["sample_id"].tolist())],
                        bool)
        n_skipped = int((~keep).sum())
        for key in DATASETS:
            if key in arrays:
                arrays[key] = arrays[key][keep]
    if len(arrays["doped"]) == 0:
        raise DefectnetError("the store has no successful samples to export", source=str(store_path))
    write_training_arrays(out, arrays, attrs, fmt, compact=compact)
    return {"path": str(out), "n_samples": len(arrays["doped"]), "n_hosts": len(arrays["host_names"]),
            "format": "h5 (compact)" if compact else fmt, "bytes": out.stat().st_size, "n_skipped": n_skipped}


def exported_samples(paths, *, seed) -> set[tuple[str, int]]:
    """``(host name, sample_id)`` of the samples that training files generated with ``seed`` hold.

    Reads only the index datasets and attributes, not the spectra. Files of another
    generation seed hold other samples under the same ids and contribute nothing.
    """
    out: set[tuple[str, int]] = set()
    for path in training_file_paths(paths):
        index = file_index(path)
        if index["config"].get("seed") == seed:
            out |= index["samples"]
    return out


def file_index(path) -> dict:
    """What a training file holds, without its spectra: ``config`` (its generation config, a dict),
    ``samples`` ({(host, sample_id)}), ``failed_samples`` ({(host, sample_id): reason}) and
    ``failed_hosts`` ({host: reason})."""
    import h5py

    path = Path(path)
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names, hid, sid = [str(x) for x in z["host_names"]], z["host_id"], z["sample_id"]
                raw = {k: str(z[k]) for k in ("config", "failed_samples", "failed_hosts") if k in z.files}
        else:
            with h5py.File(path, "r") as f:
                names = [x.decode() if isinstance(x, bytes) else str(x) for x in f["host_names"][()]]
                hid, sid = f["host_id"][()], f["sample_id"][()]
                raw = {k: f.attrs[k] for k in ("config", "failed_samples", "failed_hosts") if k in f.attrs}
        config = json.loads(raw["config"])
        bad = json.loads(raw.get("failed_samples", "{}"))
        failed_hosts = json.loads(raw.get("failed_hosts", "{}"))
    except (OSError, KeyError, ValueError) as exc:
        raise DefectnetError(f"not a readable training file ({exc})", source=str(path)) from None
    return {"config": config, "samples": {(names[h], s) for h, s in zip(hid, sid.tolist())},
            "failed_samples": {(host, int(i)): why for host, ids in bad.items() for i, why in ids.items()},
            "failed_hosts": failed_hosts}


def incomplete_hosts(store) -> list[str]:
    """Hosts of a store with fewer sample rows (ok or failed) than its config's ``samples_per_host``.

    A chunk exported mid-run lists them, so a later chunk does not skip them as done: it
    computes them again, and the samples both hold (same seed, same index) are joined once.
    """
    want = (store.get_meta("config") or {}).get("samples_per_host")
    if not want:
        return []
    have = {h: set(i) for h, i in (store.get_meta("skipped_in_files") or {}).items()}  # generate --skip-in
    for host, index in store.conn.execute("SELECT host, sample_index FROM samples"):
        have.setdefault(host, set()).add(int(index))
    return sorted(h["name"] for h in store.hosts("ok") if len(have.get(h["name"], set()) & set(range(want))) < want)
