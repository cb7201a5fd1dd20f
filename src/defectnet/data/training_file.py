"""The training file: a store's successful samples as fixed-shape arrays (HDF5 or NPZ).

Written from a generation store by :mod:`defectnet.data.export` (``defectnet dataset export``) and
by :func:`defectnet.model.dataset.write_training_file`; read by :func:`read_training_file`.

The contract the model reads (``TRAINING_SCHEMA_VERSION`` 1); n = successful samples,
B = grid bins (640 on the default grid), D = 51 dopant elements, H = 94 host elements:

attributes (HDF5 attrs; 0-d arrays in NPZ)
    ``schema_version`` (int), ``grid`` (JSON of ``EnergyGrid.to_dict()``), ``grid_id``,
    ``vocabulary`` (JSON list = :data:`defectnet.elements.DOPANTS`), ``host_elements``
    (JSON list of the symbols of Z = 1–94), ``potential``, ``tier``, ``broadening`` (JSON),
    ``created``, ``defectnet_version``, ``config`` (JSON of the generation config).
datasets
    ``pristine``, ``doped``, ``pristine_gpdos``, ``doped_gpdos``, ``host_pdos``: (n, B)
    float32 unit-area densities per meV on the grid (pristine and doped supercell at Γ;
    ``host_pdos`` is the host's q-mesh PDoS); ``targets`` (n, D) float32 realised atomic
    fractions; ``candidates`` (n, D) bool (true dopants ∪ distractors); ``composition``
    (n, H) float32 host atomic fractions; ``host_id`` (n,) int32 index into ``host_names``
    (n_hosts,) utf-8; ``n_dopants`` (n,) int8; ``sample_id`` (n,) int64 (the store row
    id); ``supercell_atoms`` (n,) int16; ``dopant_site`` (n, D) int8, the host site each true
    dopant sits on, as an index into ``host_elements`` (Z − 1 of the site's element; a site is a
    host element), −1 where the element is not a dopant of the sample (so ≥ 0 exactly where
    ``targets`` > 0). ``dopant_site`` is optional: files exported before it was added record no
    sites (``defectnet dataset bases`` then replays the planner for them).

The compact layout (``layout = "compact"``, HDF5 only; ``defectnet dataset export --compact``)
is what gets committed to the repository and carried between sessions: each host's arrays
are stored once (``host_pristine``, ``host_pristine_gpdos``, ``host_host_pdos`` (n_hosts, B)
float32, ``host_composition`` (n_hosts, H) float32), and each sample only its defect signature
Δ = doped − pristine (``delta``, ``delta_gpdos``: (n, B) float16, times ``delta_scale`` = 2¹⁰).
Δ is stored and not the doped spectrum because at 0.2 % doping Δ is ~10⁻³ of the spectrum:
float16 keeps 3 significant digits of Δ itself, where it would keep none of Δ in the doped
spectrum. ``failed_hosts`` (JSON name → reason) lists the hosts that failed, so that a later
generation can skip them too. Readers expand it to the contract above (:func:`expand_compact`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from defectnet.errors import DefectnetError

TRAINING_SCHEMA_VERSION = 1


#: Dataset name -> (trailing shape as a function of (B, D, H), dtype). Leading dim is n,
#: except ``host_names`` (n_hosts,).
DATASETS: dict[str, tuple[tuple, str]] = {
    "pristine": (("B",), "float32"),
    "doped": (("B",), "float32"),
    "pristine_gpdos": (("B",), "float32"),
    "doped_gpdos": (("B",), "float32"),
    "host_pdos": (("B",), "float32"),
    "targets": (("D",), "float32"),
    "candidates": (("D",), "bool"),
    "composition": (("H",), "float32"),
    "host_id": ((), "int32"),
    "n_dopants": ((), "int8"),
    "sample_id": ((), "int64"),
    "supercell_atoms": ((), "int16"),
    "dopant_site": (("D",), "int8"),
}
OPTIONAL_DATASETS = frozenset({"host_pdos", "dopant_site"})
ATTRIBUTES = ("schema_version", "grid", "grid_id", "vocabulary", "host_elements", "potential", "tier",
              "broadening", "created", "defectnet_version", "config")
_JSON_ATTRS = frozenset({"grid", "vocabulary", "host_elements", "broadening", "config"})
_FORMATS = {".h5": "h5", ".hdf5": "h5", ".npz": "npz"}


def _write_h5(path, arrays, attrs):
    import h5py

    with h5py.File(path, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        for k, v in arrays.items():
            if k == "host_names":
                f.create_dataset(k, data=np.array(v, dtype=object), dtype=h5py.string_dtype("utf-8"))
            elif v.ndim == 2 and len(v):
                f.create_dataset(k, data=v, compression="gzip", compression_opts=4, shuffle=True,
                                 chunks=(min(len(v), 1024), v.shape[1]))
            else:
                f.create_dataset(k, data=v)


def _write_npz(path, arrays, attrs):
    payload = {k: v for k, v in arrays.items() if k != "host_names"}
    payload["host_names"] = np.array(arrays["host_names"], dtype=str)
    payload.update({k: np.array(v) for k, v in attrs.items()})
    with open(path, "wb") as fh:  # np.savez_compressed appends .npz to bare names
        np.savez_compressed(fh, **payload)


#: Format name -> writer(path, arrays, attrs).
WRITERS = {"h5": _write_h5, "npz": _write_npz}

#: Δ = doped − pristine is stored as float16(Δ × DELTA_SCALE) in the compact layout (a power of
#: two: the scaling itself is exact; |Δ| ≤ 1 per meV on unit-area spectra, far below float16's 65504).
DELTA_SCALE = 2.0**10
_HOST_LEVEL = {"pristine": "host_pristine", "pristine_gpdos": "host_pristine_gpdos", "host_pdos": "host_host_pdos",
               "composition": "host_composition"}
_DELTAS = {"doped": ("delta", "pristine"), "doped_gpdos": ("delta_gpdos", "pristine_gpdos")}


def compact_arrays(arrays: dict) -> dict:
    """The contract arrays in the compact layout (host arrays once, Δ as scaled float16).

    Raises
    ------
    DefectnetError
        If two samples of one host carry different host arrays (then nothing can be shared).
    """
    n_hosts = len(arrays["host_names"])
    hid = arrays["host_id"]
    first = np.full(n_hosts, -1)
    first[hid[::-1]] = np.arange(len(hid))[::-1]  # first sample of each host
    has = first >= 0  # hosts without samples keep zero rows
    out = {}
    for key, name in _HOST_LEVEL.items():
        if key not in arrays:
            continue
        a = arrays[key]
        host_a = np.zeros((n_hosts,) + a.shape[1:], a.dtype)
        host_a[has] = a[first[has]]
        if not np.array_equal(host_a[hid], a):
            raise DefectnetError(f"samples of one host differ in {key!r}; the compact layout cannot hold them")
        out[name] = host_a
    for key, (name, base) in _DELTAS.items():
        out[name] = ((arrays[key] - arrays[base]) * DELTA_SCALE).astype(np.float16)
    for key in DATASETS:
        if key not in _HOST_LEVEL and key not in _DELTAS and key in arrays:  # optional ones may be absent
            out[key] = arrays[key]
    out["host_names"] = arrays["host_names"]
    return out


def expand_compact(d: dict) -> dict:
    """Inverse of :func:`compact_arrays` on a file's flat dict (datasets and attributes).

    The doped spectra come back as pristine + Δ, clipped at 0 (float16 rounding can leave
    −10⁻⁷ where a band empties); their error is ≤ 2⁻¹¹ |Δ| per bin.
    """
    d = dict(d)
    scale = float(d.pop("delta_scale", DELTA_SCALE))
    hid = d["host_id"]
    for key, name in _HOST_LEVEL.items():
        if name in d:
            d[key] = np.asarray(d.pop(name))[hid]
    for key, (name, base) in _DELTAS.items():
        delta = np.asarray(d.pop(name), np.float32) / np.float32(scale)
        d[key] = np.maximum(d[base] + delta, 0).astype(np.float32)
    d.pop("layout", None)
    d.pop("failed_hosts", None)
    d.pop("incomplete_hosts", None)
    d.pop("failed_samples", None)
    d.pop("complete_hosts", None)
    return d


#: Suffixes of training files (what a directory of them is searched for).
TRAINING_SUFFIXES = (".h5", ".hdf5", ".npz")


def given_paths(paths) -> list[Path]:
    """The paths as given: one path, an iterable of them, or several joined by commas."""
    if isinstance(paths, (str, os.PathLike)):
        paths = str(paths).split(",")
    return [Path(str(x).strip()) for x in paths if str(x).strip()]


def training_file_paths(paths, *, missing_ok: bool = False) -> list[Path]:
    """The training files that ``paths`` name: files as given, directories by their sorted contents.

    ``paths`` is one path, an iterable of them, or several joined by commas. A path that
    does not exist is an error unless ``missing_ok`` (then it names no file).
    """
    out = []
    for p in given_paths(paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in TRAINING_SUFFIXES)
            if not found and not missing_ok:
                raise DefectnetError(f"training data {p}: the directory holds no .h5 or .npz file")
            out += found
        elif p.exists():
            out.append(p)
        elif not missing_ok:
            raise DefectnetError(f"training data {p} does not exist")
    return out


def training_file_hosts(path) -> tuple[set[str], set[str]]:
    """(hosts with all their samples, hosts recorded as failed) of a training file, without
    reading spectra. A host the file lists as incomplete (exported mid-run) is neither; one
    listed as complete is done even if its samples are all in other files."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                listed, host_id = [str(x) for x in z["host_names"]], z["host_id"]
                failed = z["failed_hosts"].item() if "failed_hosts" in z.files else "{}"
                partial = z["incomplete_hosts"].item() if "incomplete_hosts" in z.files else "[]"
                done = z["complete_hosts"].item() if "complete_hosts" in z.files else "[]"
        else:
            import h5py

            with h5py.File(path, "r") as f:
                listed = [x.decode() if isinstance(x, bytes) else str(x) for x in f["host_names"][()]]
                host_id, failed = f["host_id"][()], f.attrs.get("failed_hosts", "{}")
                partial = f.attrs.get("incomplete_hosts", "[]")
                done = f.attrs.get("complete_hosts", "[]")
        present = {listed[i] for i in np.unique(host_id)} - set(json.loads(partial))
        return present | set(json.loads(done)), set(json.loads(failed))
    except (OSError, KeyError, ValueError) as exc:
        raise DefectnetError(f"not a readable training file ({exc})", source=str(path)) from None


def training_file_sites(path) -> dict[tuple[str, int, object], dict[str, str]] | None:
    """The host site of each true dopant that a training file records, without reading spectra.

    Returns
    -------
    dict or None
        ``{(host name, sample_id, generation seed): {element: host site symbol}}``, one entry per
        sample (keyed as :func:`defectnet.model.dataset.concat_training_data` tells samples
        apart, so a sample two files hold is one key); None if the file records no sites
        (exported before ``dopant_site`` was added).
    """
    import h5py

    path = Path(path)
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "dopant_site" not in z.files:
                    return None
                names, hid, sid = [str(x) for x in z["host_names"]], z["host_id"], z["sample_id"]
                site, targets = z["dopant_site"], z["targets"]
                vocab, elements, config = (str(z[k]) for k in ("vocabulary", "host_elements", "config"))
        else:
            with h5py.File(path, "r") as f:
                if "dopant_site" not in f:
                    return None
                names = [x.decode() if isinstance(x, bytes) else str(x) for x in f["host_names"][()]]
                hid, sid, site, targets = (f[k][()] for k in ("host_id", "sample_id", "dopant_site", "targets"))
                vocab, elements, config = (f.attrs[k] for k in ("vocabulary", "host_elements", "config"))
        vocab, elements, seed = json.loads(vocab), json.loads(elements), json.loads(config).get("seed")
    except (OSError, KeyError, ValueError) as exc:
        raise DefectnetError(f"not a readable training file ({exc})", source=str(path)) from None
    problem = ("dopant_site is not one row per sample and a column per dopant" if site.shape != (len(hid), len(vocab))
               else dopant_site_problem(site, targets, len(elements)))  # the check read_training_file makes
    if problem:
        raise DefectnetError(problem, source=str(path))
    return {(names[h], s, seed): {vocab[j]: elements[site[i, j]] for j in np.flatnonzero(site[i] >= 0)}
            for i, (h, s) in enumerate(zip(hid.tolist(), sid.tolist()))}


def training_format(out: Path, fmt: str | None = None, compact: bool = False) -> str:
    """The writer (``'h5'`` or ``'npz'``) of a training file named ``out``; raises for any other."""
    fmt = fmt or _FORMATS.get(out.suffix.lower())
    if fmt not in WRITERS:
        raise DefectnetError(f"unknown export format for {out.name!r}; use a .h5 or .npz file (or fmt='h5'|'npz')")
    if compact and fmt != "h5":
        raise DefectnetError(f"the compact layout is HDF5 only; name the output .h5, not {out.name!r}")
    return fmt


def write_training_arrays(out, arrays: dict, attrs: dict, fmt: str | None = None, *, compact: bool = False) -> Path:
    """Write a training file: the one writer of the contract (:func:`defectnet.data.export.export` and
    :func:`defectnet.model.dataset.write_training_file` both call it).

    Parameters
    ----------
    out : str or Path
        Written to a temporary name and renamed, so a reader never sees half a file.
    arrays : dict
        The datasets (``host_names`` a sequence of str); attrs: the attributes, JSON ones as strings.
    fmt : {'h5', 'npz'}, optional
        Default from the suffix (``.h5``/``.hdf5`` → HDF5, ``.npz`` → NPZ).
    compact : bool
        The compact layout (HDF5 only).
    """
    out = Path(out)
    fmt = training_format(out, fmt, compact)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if compact:
        _write_h5(tmp, compact_arrays(arrays), {**attrs, "layout": "compact", "delta_scale": DELTA_SCALE})
    else:
        WRITERS[fmt](tmp, arrays, attrs)
    os.replace(tmp, out)
    return out


def read_training_file(path) -> dict:
    """Read and validate one training file (HDF5 or NPZ) as the contract's flat dict.

    The format's own reader; to train or evaluate, read files (one, a directory, several, or a
    store) with :func:`defectnet.model.dataset.load_training_file`, which returns a
    :class:`~defectnet.model.dataset.TrainingData` built from this dict.

    Returns
    -------
    dict
        Every dataset as a numpy array (``host_names`` as a list of str) and every
        attribute (JSON attributes decoded: ``grid`` a dict, ``vocabulary`` and
        ``host_elements`` lists, ...), in one flat dict.

    Raises
    ------
    DefectnetError
        Wrong ``schema_version``, a missing dataset or attribute, or a shape/dtype that
        breaks the contract (see the module docstring).
    """
    path = Path(path)
    if not path.is_file():
        raise DefectnetError("no such training file", source=str(path))
    try:
        d = _read_npz(path) if path.suffix.lower() == ".npz" else _read_h5(path)
    except (OSError, ValueError) as exc:
        raise DefectnetError(f"not a readable training file ({exc})", source=str(path)) from None
    if d.get("layout") == "compact":
        d = expand_compact(d)
    missing = [a for a in ATTRIBUTES if a not in d]
    if missing:
        raise DefectnetError(f"missing attributes {missing}", source=str(path))
    version = int(d["schema_version"])
    if version != TRAINING_SCHEMA_VERSION:
        raise DefectnetError(f"training file schema_version {version}; this defectnet reads {TRAINING_SCHEMA_VERSION}",
                             source=str(path))
    d["schema_version"] = version
    for k in ATTRIBUTES:
        if k in _JSON_ATTRS:
            d[k] = json.loads(d[k])
        elif k != "schema_version":
            d[k] = str(d[k])
    from defectnet.elements import DOPANTS
    from defectnet.grid import EnergyGrid

    try:
        grid = EnergyGrid.from_dict(d["grid"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DefectnetError(f"bad grid attribute ({exc})", source=str(path)) from None
    if not grid.is_id(d["grid_id"]):
        raise DefectnetError(f"grid_id {d['grid_id']} does not match its grid ({grid.grid_id})", source=str(path))
    d["grid_id"] = grid.grid_id  # an older file's id of an integer energy, as ids are now
    if d["vocabulary"] != list(DOPANTS):
        raise DefectnetError("vocabulary differs from defectnet.elements.DOPANTS", source=str(path))
    n_bins = int(d["grid"]["n_bins"])
    dims = {"B": n_bins, "D": len(d["vocabulary"]), "H": len(d["host_elements"])}
    n = None
    for key, (trail, dtype) in DATASETS.items():
        if key not in d:
            if key in OPTIONAL_DATASETS:
                continue
            raise DefectnetError(f"missing dataset {key!r}", source=str(path))
        v = d[key]
        n = len(v) if n is None else n
        want = (n,) + tuple(dims[t] for t in trail)
        if v.shape != want or v.dtype != np.dtype(dtype):
            raise DefectnetError(f"dataset {key!r} is {v.dtype}{list(v.shape)}, expected {dtype}{list(want)}",
                                 source=str(path))
    d["host_names"] = [str(x) for x in d["host_names"]]
    if n and (d["host_id"].min() < 0 or d["host_id"].max() >= len(d["host_names"])):
        raise DefectnetError("host_id indexes outside host_names", source=str(path))
    if "dopant_site" in d:
        problem = dopant_site_problem(d["dopant_site"], d["targets"], len(d["host_elements"]))
        if problem:
            raise DefectnetError(problem, source=str(path))
    return d


def dopant_site_problem(site: np.ndarray, targets: np.ndarray, n_host_elements: int) -> str | None:
    """Why a ``dopant_site`` array breaks the contract, else None.

    Parameters
    ----------
    site : ndarray of int8, shape (n, D)
        Index into the host elements per true dopant, −1 elsewhere.
    targets : ndarray of float, shape (n, D)
        Atomic fractions: a site is recorded exactly where one is > 0.
    n_host_elements : int
        H, the length of ``host_elements``.
    """
    if site.size and (site.min() < -1 or site.max() >= n_host_elements):
        return "dopant_site indexes outside host_elements"
    if not np.array_equal(site >= 0, np.asarray(targets) > 0):
        return "dopant_site records a site where targets has no dopant, or none where it has one"
    return None


def training_label_problems(d: dict) -> list[str]:
    """Samples of a loaded training file (:func:`read_training_file`) whose labels cannot be a placement.

    A training file keeps no dopant positions, but a concentration is a number of atoms over
    the supercell's ``supercell_atoms``: each target × that must be a whole number (to float32
    round-off, 1e-3 of an atom), and no more elements may be present than ``n_dopants`` placed.
    An edited concentration fails unless it was moved by whole atoms (a store, which keeps the
    placement, is checked in full: :meth:`~defectnet.data.store.Store.check`).
    """
    targets, atoms = np.asarray(d["targets"], float), np.asarray(d["supercell_atoms"], float)
    out = []
    for i in range(len(targets)):
        name = f"sample {d['host_names'][int(d['host_id'][i])]} (id {int(d['sample_id'][i])})"
        counts = targets[i] * atoms[i]
        off = np.flatnonzero(np.abs(counts - np.round(counts)) > 1e-3)
        if off.size:
            el = d["vocabulary"][off[0]]
            out.append(f"{name}: concentration of {el} is {targets[i, off[0]]:.6g}, {counts[off[0]]:.3f} atoms of its "
                       f"supercell of {int(atoms[i])}; expected a whole number of atoms")
        elif np.count_nonzero(targets[i]) > int(d["n_dopants"][i]):
            out.append(f"{name}: {np.count_nonzero(targets[i])} elements have a concentration, but n_dopants is "
                       f"{int(d['n_dopants'][i])}")
    return out


def _read_h5(path) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        d = {k: f[k][()] for k in f.keys()}
        d.update({k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()})
    d["host_names"] = [x.decode() if isinstance(x, bytes) else str(x) for x in d.get("host_names", [])]
    return d


def _read_npz(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    for k in ATTRIBUTES:
        if k in d and d[k].ndim == 0:
            d[k] = d[k].item()
    return d
