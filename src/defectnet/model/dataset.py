"""Training files as tensors: loading, a synthetic generator, host-grouped splits, candidates.

The training file (written by ``defectnet dataset export`` or :func:`write_training_file`) has
one contract, one reader and one writer, in :mod:`defectnet.data.training_file`;
:func:`load_training_file` is the entry point that reads one or many files (or a store) into a
:class:`TrainingData` of n samples on one :class:`~defectnet.grid.EnergyGrid` of G bins, the
dopant vocabulary of V elements (:data:`defectnet.elements.DOPANTS`) and H host elements.

Splits are grouped by host (:func:`split_by_host`): out-of-distribution hosts are never
seen in training; the in-distribution test set holds unseen doped configurations of the
training hosts. Augmentation lives in :mod:`defectnet.model.augment`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import periodictable

from defectnet.elements import DOPANTS
from defectnet.errors import DefectnetError
from defectnet.data.training_file import TRAINING_SCHEMA_VERSION as SCHEMA_VERSION
from defectnet.grid import DEFAULT_GRID, EnergyGrid
from defectnet.settings import Settings

#: Order of the host composition vector: symbols of Z = 1–94.
HOST_ELEMENTS: tuple[str, ...] = tuple(periodictable.elements[z].symbol for z in range(1, 95))

#: Spectrum modes: which pair of arrays the model sees.
SPECTRUM_MODES = {"total": ("pristine", "doped"), "gpdos": ("pristine_gpdos", "doped_gpdos")}

TRAINING_ARRAYS = {  # name -> (dtype, trailing shape key)
    "pristine": (np.float32, "G"), "doped": (np.float32, "G"),
    "pristine_gpdos": (np.float32, "G"), "doped_gpdos": (np.float32, "G"),
    "targets": (np.float32, "V"), "candidates": (np.bool_, "V"), "composition": (np.float32, "H"),
    "host_id": (np.int32, None), "n_dopants": (np.int8, None), "sample_id": (np.int64, None),
    "supercell_atoms": (np.int16, None),
}


@dataclass
class TrainingData:
    """All samples of a training file, as numpy arrays (see the module docstring for shapes).

    Attributes
    ----------
    grid : EnergyGrid
    vocabulary : tuple of str
        Dopant elements, the order of ``targets`` and ``candidates`` columns.
    host_elements : tuple of str
        The order of ``composition`` columns.
    host_names : ndarray of str, shape (n_hosts,)
        ``host_names[host_id[i]]`` is sample i's host.
    attrs : dict
        The remaining file attributes (potential, tier, broadening, config, ...).
    """

    pristine: np.ndarray
    doped: np.ndarray
    pristine_gpdos: np.ndarray
    doped_gpdos: np.ndarray
    targets: np.ndarray
    candidates: np.ndarray
    composition: np.ndarray
    host_id: np.ndarray
    n_dopants: np.ndarray
    sample_id: np.ndarray
    supercell_atoms: np.ndarray
    host_names: np.ndarray
    grid: EnergyGrid = DEFAULT_GRID
    vocabulary: tuple = DOPANTS
    host_elements: tuple = HOST_ELEMENTS
    attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.targets)
        sizes = {"G": self.grid.n_bins, "V": len(self.vocabulary), "H": len(self.host_elements)}
        for name, (dtype, key) in TRAINING_ARRAYS.items():
            a = np.asarray(getattr(self, name)).astype(dtype, copy=False)
            want = (n,) if key is None else (n, sizes[key])
            if a.shape != want:
                raise DefectnetError(f"training data: {name} has shape {a.shape}, expected {want}")
            setattr(self, name, a)
        self.host_names = np.asarray([str(h) for h in self.host_names], dtype=object)
        if n and (self.host_id.min() < 0 or self.host_id.max() >= len(self.host_names)):
            raise DefectnetError("training data: host_id points outside host_names")
        if np.any(self.targets < 0) or np.any((self.targets > 0) & ~self.candidates):
            raise DefectnetError("training data: every true dopant must be a candidate, with a fraction >= 0")
        self.vocabulary, self.host_elements = tuple(self.vocabulary), tuple(self.host_elements)

    def __len__(self) -> int:
        return len(self.targets)

    def spectra(self, mode: str = "total") -> tuple[np.ndarray, np.ndarray]:
        """(pristine, doped), each (n, G), for ``mode`` in :data:`SPECTRUM_MODES`."""
        if mode not in SPECTRUM_MODES:
            raise DefectnetError(f"unknown spectrum mode {mode!r}; expected one of {sorted(SPECTRUM_MODES)}")
        a, b = SPECTRUM_MODES[mode]
        return getattr(self, a), getattr(self, b)

    def subset(self, idx) -> TrainingData:
        """The samples ``idx`` (host_names kept whole, so host ids stay valid)."""
        idx = np.asarray(idx)
        kw = {name: getattr(self, name)[idx] for name in TRAINING_ARRAYS}
        return TrainingData(**kw, host_names=self.host_names, grid=self.grid, vocabulary=self.vocabulary,
                            host_elements=self.host_elements, attrs=dict(self.attrs))

    def hosts_of(self, idx=None) -> list[str]:
        """Sorted names of the hosts that occur in samples ``idx`` (default all)."""
        ids = self.host_id if idx is None else self.host_id[np.asarray(idx)]
        return sorted({str(self.host_names[i]) for i in np.unique(ids)})


# ------------------------------------------------------------------------ file I/O
def load_training_file(path, *, export_dir=None) -> TrainingData:
    """Read a training file (``.h5``/``.hdf5``/``.npz``), or export a ``.sqlite`` store first.

    Parameters
    ----------
    path : str or Path
        One file; or a directory, or several paths joined by commas, whose training files
        are read in sorted order and concatenated (:func:`concat_training_data`) — the
        reference dataset is committed as one compact file per generation chunk.
    export_dir : path, optional
        Where a ``.sqlite`` store is exported to (default: a temporary directory).

    Raises
    ------
    DefectnetError
        Missing file, unknown suffix, wrong schema, a store that cannot be exported, or
        files that cannot be joined (another grid, vocabulary, potential or tier).
    """
    from defectnet.data.training_file import training_file_paths

    paths = training_file_paths(path)
    if len(paths) > 1:
        return concat_training_data([load_training_file(p, export_dir=export_dir) for p in paths])
    path = paths[0]
    suffix = path.suffix.lower()
    if suffix in (".sqlite", ".db"):
        return load_training_file(_export_store(path, export_dir))
    if suffix not in (".h5", ".hdf5", ".npz"):
        raise DefectnetError(f"training data {path}: expected .h5, .npz or .sqlite, got {suffix!r}")
    from defectnet.data.training_file import read_training_file

    return _from_contract(read_training_file(path), source=str(path))


#: Attributes that must agree for training files to be joined.
_JOIN_ATTRS = ("potential", "tier")


def concat_training_data(parts: list[TrainingData]) -> TrainingData:
    """Join training data from several files into one (hosts merged by name).

    A sample present in more than one part (same host, same ``sample_id``, same generation
    seed: the same seeded sample generated twice) is kept once, from the first part; a host
    generated again under another seed (e.g. with an explicit dopant pool) adds samples.

    Raises
    ------
    DefectnetError
        If the parts differ in grid, vocabulary, host elements, potential or tier.
    """
    first = parts[0]
    for d in parts[1:]:
        src = d.attrs.get("source", "?")
        if d.grid.grid_id != first.grid.grid_id:
            raise DefectnetError(f"grid {d.grid.grid_id} differs from {first.grid.grid_id} of "
                                 f"{first.attrs.get('source', 'the first file')}", source=src)
        if d.vocabulary != first.vocabulary or d.host_elements != first.host_elements:
            raise DefectnetError("dopant vocabulary or host elements differ from the first file", source=src)
        for k in _JOIN_ATTRS:
            if str(d.attrs.get(k)) != str(first.attrs.get(k)):
                raise DefectnetError(f"{k} {d.attrs.get(k)!r} differs from {first.attrs.get(k)!r} of the first file",
                                     source=src)
    names = sorted({str(h) for d in parts for h in d.host_names})
    index = {h: i for i, h in enumerate(names)}
    cols = {k: [] for k in TRAINING_ARRAYS}
    seen = set()
    for d in parts:
        hid = np.array([index[str(h)] for h in d.host_names], np.int32)[d.host_id]
        seed = _generation_seed(d)
        keys = [(h, s, seed) for h, s in zip(hid, d.sample_id)]
        keep = np.array([k not in seen for k in keys], bool)
        seen.update(k for k, kept in zip(keys, keep) if kept)
        for k in TRAINING_ARRAYS:
            cols[k].append(hid[keep] if k == "host_id" else getattr(d, k)[keep])
    attrs = dict(first.attrs)
    attrs["source"] = ",".join(str(d.attrs.get("source", "?")) for d in parts)
    return TrainingData(**{k: np.concatenate(v) for k, v in cols.items()}, host_names=np.array(names, dtype=object),
                        grid=first.grid, vocabulary=first.vocabulary, host_elements=first.host_elements, attrs=attrs)


def _generation_seed(d: TrainingData):
    """The config seed a part was generated with (None if its attributes do not say)."""
    config = d.attrs.get("config") or {}
    try:
        return (json.loads(config) if isinstance(config, str) else config).get("seed")
    except (ValueError, AttributeError):
        return None


def _from_contract(d: dict, source: str) -> TrainingData:
    """TrainingData from the validated dict of :func:`defectnet.data.training_file.read_training_file`."""
    skip = {*TRAINING_ARRAYS, "host_names", "grid", "vocabulary", "host_elements"}
    attrs = {k: v for k, v in d.items() if k not in skip and not isinstance(v, np.ndarray)}
    attrs["source"] = source
    return TrainingData(**{k: d[k] for k in TRAINING_ARRAYS}, host_names=np.array(d["host_names"], dtype=object),
                        grid=EnergyGrid.from_dict(d["grid"]), vocabulary=tuple(d["vocabulary"]),
                        host_elements=tuple(d["host_elements"]), attrs=attrs)


def _export_store(path: Path, export_dir) -> Path:
    """Export a dataset store to a training file (in ``export_dir``, default a temporary directory)."""
    from defectnet.data.export import export

    out_dir = Path(export_dir) if export_dir else Path(tempfile.mkdtemp(prefix="defectnet-export-"))
    return Path(export(path, out_dir / (path.stem + ".h5"))["path"])


def write_training_file(data: TrainingData, path) -> Path:
    """Write ``data`` as a training file (``.h5`` or ``.npz``, same keys and attrs)."""
    import time

    import defectnet
    from defectnet.data.training_file import write_training_arrays

    attrs = {
        "schema_version": SCHEMA_VERSION,
        "grid": json.dumps(data.grid.to_dict()),
        "grid_id": data.grid.grid_id,
        "vocabulary": json.dumps(list(data.vocabulary)),
        "host_elements": json.dumps(list(data.host_elements)),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "defectnet_version": defectnet.__version__,
    }
    for k, default in (("potential", ""), ("tier", ""), ("broadening", "{}"), ("config", "{}")):
        v = data.attrs.get(k, default)
        attrs[k] = v if isinstance(v, str) else json.dumps(v)
    arrays = {name: getattr(data, name) for name in TRAINING_ARRAYS}
    return write_training_arrays(path, {**arrays, "host_names": [str(h) for h in data.host_names]}, attrs)


def composition_vector(composition, host_elements=HOST_ELEMENTS) -> np.ndarray:
    """Host atomic fractions as a vector, shape (H,), from a {element: fraction or count} dict or a vector."""
    if isinstance(composition, dict):
        v = np.zeros(len(host_elements), dtype=np.float32)
        index = {el: i for i, el in enumerate(host_elements)}
        for el, x in composition.items():
            if el not in index:
                raise DefectnetError(f"composition element {el!r} is not a host element (Z = 1–94)")
            v[index[el]] += float(x)
    else:
        v = np.asarray(composition, dtype=np.float32)
        if v.shape != (len(host_elements),):
            raise DefectnetError(f"composition vector has shape {v.shape}, expected ({len(host_elements)},)")
    if np.any(v < 0) or v.sum() <= 0:
        raise DefectnetError("composition must be non-negative with a positive sum")
    return v / v.sum()


# ------------------------------------------------------------------------ splits
@dataclass(frozen=True)
class SplitConfig(Settings, what="split"):
    """How samples are split, grouped by host.

    Attributes
    ----------
    seed : int
    ood_fraction : float
        Share of hosts held out entirely (out-of-distribution test).
    val_fraction, test_fraction : float
        Shares of the remaining hosts' samples for validation and the in-distribution test.
    ood_hosts : tuple of str
        Explicit OOD hosts (overrides ``ood_fraction`` when given).
    calib_host_fraction : float
        Share of the non-OOD hosts held out of training to calibrate the uncertainty for hosts
        never seen (their samples form ``val_ood``). A model calibrated only on unseen
        configurations of training hosts is overconfident on a new host; 0 = off.
    calib_hosts : tuple of str
        Explicit calibration hosts (overrides ``calib_host_fraction`` when given).
    """

    seed: int = 0
    ood_fraction: float = 0.2
    val_fraction: float = 0.1
    test_fraction: float = 0.15
    ood_hosts: tuple = ()
    calib_host_fraction: float = 0.0
    calib_hosts: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "ood_hosts", tuple(self.ood_hosts))
        object.__setattr__(self, "calib_hosts", tuple(self.calib_hosts))
        if both := sorted(set(self.ood_hosts) & set(self.calib_hosts)):
            raise DefectnetError(f"split: hosts {both} are both ood_hosts and calib_hosts")
        for name in ("ood_fraction", "val_fraction", "test_fraction", "calib_host_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise DefectnetError(f"split {name} must be in [0, 1), got {getattr(self, name)}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise DefectnetError("split val_fraction + test_fraction must be < 1")


@dataclass(frozen=True)
class Split:
    """Index arrays into one :class:`TrainingData`, and the host names of each part."""

    train: np.ndarray
    val: np.ndarray
    test_id: np.ndarray
    test_ood: np.ndarray
    train_hosts: tuple
    ood_hosts: tuple
    val_ood: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    calib_hosts: tuple = ()

    def to_dict(self) -> dict:
        d = {k: getattr(self, k).tolist() for k in ("train", "val", "test_id", "test_ood", "val_ood")}
        return {**d, "train_hosts": list(self.train_hosts), "ood_hosts": list(self.ood_hosts),
                "calib_hosts": list(self.calib_hosts)}

    def part(self, name: str) -> np.ndarray:
        key = {"id": "test_id", "ood": "test_ood"}.get(name, name)
        if key not in ("train", "val", "test_id", "test_ood", "val_ood"):
            raise DefectnetError(f"unknown split {name!r}; expected train, val, val_ood, id or ood")
        return getattr(self, key)


def split_by_host(data: TrainingData, config: SplitConfig = SplitConfig()) -> Split:
    """Seeded host-grouped split.

    OOD hosts are drawn (or given) first; every sample of theirs goes to ``test_ood``. Then
    ``calib_host_fraction`` of the rest are held out whole as ``val_ood`` (calibration for
    unseen hosts; nothing is drawn when it is 0, so older splits are unchanged). The
    remaining hosts' samples are split per host into train / val / in-distribution test, so
    every training host appears in all three (hosts with fewer than 3 samples go to train).
    Samples with the same ``sample_id`` (one doped structure) always stay together.
    """
    rng = np.random.default_rng(config.seed)
    names = data.hosts_of()
    ood = _held_out_hosts("ood_hosts", config.ood_hosts, names, config.ood_fraction, rng)
    rest = [h for h in names if h not in ood]
    calib = _held_out_hosts("calib_hosts", config.calib_hosts, rest, config.calib_host_fraction, rng)
    host_of = np.array([str(data.host_names[i]) for i in data.host_id], dtype=object)
    is_ood = np.isin(host_of, ood)
    is_cal = np.isin(host_of, calib)
    parts = {"train": [], "val": [], "test_id": []}
    for h in [h for h in rest if h not in calib]:
        groups = np.unique(data.sample_id[host_of == h])
        rng.shuffle(groups)
        n = len(groups)
        n_val = int(round(config.val_fraction * n)) if n >= 3 else 0
        n_test = int(round(config.test_fraction * n)) if n >= 3 else 0
        parts["val"].append(groups[:n_val])
        parts["test_id"].append(groups[n_val:n_val + n_test])
        parts["train"].append(groups[n_val + n_test:])
    idx = {}
    for k, g in parts.items():
        g = np.concatenate(g) if g else np.zeros(0, np.int64)
        idx[k] = np.flatnonzero(np.isin(data.sample_id, g) & ~is_ood & ~is_cal)
    return Split(train=idx["train"], val=idx["val"], test_id=idx["test_id"], test_ood=np.flatnonzero(is_ood),
                 train_hosts=tuple(h for h in rest if h not in calib), ood_hosts=tuple(ood),
                 val_ood=np.flatnonzero(is_cal), calib_hosts=tuple(calib))


def _held_out_hosts(key: str, given, hosts, fraction: float, rng) -> list:
    """The ``given`` hosts (all must be among ``hosts``), or a seeded draw of ``fraction`` of them
    (at least one host is always left; nothing is drawn, and ``rng`` not advanced, for none)."""
    if given:
        unknown = sorted(set(given) - set(hosts))
        if unknown:
            raise DefectnetError(f"split: {key} {unknown} are not in the data")
        return sorted(given)
    n = min(int(round(fraction * len(hosts))), len(hosts) - 1)
    return sorted(rng.choice(hosts, size=n, replace=False).tolist()) if n > 0 else []


# ------------------------------------------------------------------------ candidates
#: How the candidate lists of training and evaluation are made (``TrainConfig.distractors``).
DISTRACTOR_MODES = ("pool", "stored")


def host_pools(data: TrainingData) -> np.ndarray:
    """(n_hosts, V) bool: the elements that are a true dopant of the host in some sample (its dopant pool)."""
    pools = np.zeros((len(data.host_names), len(data.vocabulary)), bool)
    np.logical_or.at(pools, data.host_id, data.targets > 0)
    return pools


def draw_candidates(data: TrainingData, rng: np.random.Generator, n_distractors=(1, 4), idx=None,
                    pools=None) -> np.ndarray:
    """Candidate masks (len(idx), V): the true dopants plus distractors from the host's own dopant pool.

    Distractors drawn from the recommender's other suggestions (the stored lists) are elements
    that are *never* present in that host's data, so a model can learn their names instead of
    reading the spectrum. Drawn from the host's pool instead, every candidate of a host is
    present in some samples and absent in others. ``n_distractors`` is an inclusive range,
    capped by what the pool leaves. A sample whose pool leaves nothing (a one-dopant dataset
    such as SiGe, or every pool element present) keeps its stored list, the only negatives it has.
    """
    idx = np.arange(len(data)) if idx is None else np.asarray(idx)
    pools = host_pools(data) if pools is None else pools
    true = data.targets[idx] > 0
    avail = pools[data.host_id[idx]] & ~true
    lo, hi = n_distractors
    k = np.minimum(rng.integers(lo, hi + 1, size=len(idx)), avail.sum(1))
    keys = np.where(avail, rng.random(avail.shape), np.inf)
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)  # 0 = first choice
    out = true | (avail & (rank < k[:, None]))
    empty = ~avail.any(1)
    out[empty] = data.candidates[idx][empty] | true[empty]
    return out


def with_candidates(data: TrainingData, mode: str, seed: int, n_distractors=(1, 4)) -> TrainingData:
    """``data`` with its candidate masks made by ``mode`` (``pool``: :func:`draw_candidates`, seeded; ``stored``: as is)."""
    if mode not in DISTRACTOR_MODES:
        raise DefectnetError(f"distractors must be one of {', '.join(DISTRACTOR_MODES)}, got {mode!r}")
    if mode == "stored":
        return data
    out = data.subset(np.arange(len(data)))
    out.candidates = draw_candidates(data, np.random.default_rng(seed), n_distractors)
    return out


def fingerprint(data: TrainingData) -> str:
    """Short hash of a dataset's identity (sample ids, hosts, grid, vocabulary)."""
    import hashlib

    h = hashlib.sha1()
    h.update(np.ascontiguousarray(data.sample_id).tobytes())
    h.update(np.ascontiguousarray(data.host_id).tobytes())
    h.update(json.dumps([list(map(str, data.host_names)), data.grid.grid_id, list(data.vocabulary)]).encode())
    return h.hexdigest()[:16]


def select_split(data: TrainingData, info: dict, name: str) -> np.ndarray:
    """Indices of split ``name`` ('train', 'val', 'id', 'ood', 'all') as recorded in a checkpoint's ``data`` info.

    'ood' is every sample whose host is neither a recorded training host nor a calibration
    host, so it works on any dataset; 'train', 'val' and 'id' re-create the seeded split and
    need the very data the model was trained on (checked by :func:`fingerprint`).
    """
    if name == "all":
        return np.arange(len(data))
    if name not in ("train", "val", "id", "ood"):
        raise DefectnetError(f"unknown split {name!r}; expected id, ood, val, train or all")
    if "train_hosts" not in info:
        raise DefectnetError("the checkpoint does not record its training hosts; use --split all")
    host_of = np.array([str(data.host_names[i]) for i in data.host_id], dtype=object)
    if name == "ood":  # hosts held out for calibration were not trained on, but tuned σ: not a test
        seen = list(info["train_hosts"]) + list(info.get("calib_hosts") or ())
        return np.flatnonzero(~np.isin(host_of, seen))
    if info.get("fingerprint") != fingerprint(data):
        raise DefectnetError(f"split {name!r} needs the data the model was trained on (fingerprint "
                             f"{info.get('fingerprint')}, this file has {fingerprint(data)}); use --split ood or all")
    return split_by_host(data, SplitConfig.from_dict(info["split_config"])).part(name)
