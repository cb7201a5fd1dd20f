"""The dataset store: one SQLite file of pristine hosts, force-constant patches and doped samples.

Why plain :mod:`sqlite3` and not ``ase.db``
-------------------------------------------
ASE's database is built around one ``Atoms`` per row with key–value pairs in
entity–attribute–value tables; it cannot express what makes resuming safe here — a
natural ``UNIQUE (host, sample_index)`` key so that a re-committed row is ignored rather
than duplicated — has no place for per-host force constants or per-(host, site, dopant)
patches, and would store a full 433–500-atom structure per sample (the doped cell is
fully determined by the host, the supercell matrix and the dopant indices, which we keep).
Plain SQLite gives an explicit, versioned schema that anyone can open with ``sqlite3``,
columns you can ``WHERE``/``GROUP BY`` on (JSON columns work with ``json_extract`` and
``json_each``), WAL journaling (readers never block the writer; a killed writer loses
only its open transaction) and ``PRAGMA integrity_check``.

Layout (schema version :data:`SCHEMA_VERSION`)
----------------------------------------------
``meta``     key → value (JSON): schema version, the generation config, grid, potential, ...
``runs``     one row per ``generate`` invocation: start/end, workers, status, summary.
``hosts``    one row per pristine host: status/reason, queryable metadata, and blobs —
             ``input`` (the structure as given), ``pristine`` (relaxed primitive cell,
             force-constant supercell matrix, compact force constants in eV/Å², the
             doped-supercell matrix) and ``spectra`` (pristine supercell PDoS and GPDoS,
             the host's q-mesh PDoS, each with partials).
``patches``  one row per (host, primitive site, dopant element) force-constant patch.
``samples``  one row per doped sample, ``id`` = :func:`sample_id` (deterministic), with
             dopants, realised concentrations, candidates, seed, timings and a blob of the
             doped PDoS/GPDoS (float32) and the dopant indices.

Arrays are stored as ``numpy.savez_compressed`` blobs (:func:`pack_arrays`), read without
pickle. Workers pack them, so the single writer (the client) only executes INSERTs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from defectnet.errors import DefectnetError

#: Version of the SQLite layout below; a store of another version is refused.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                      -- JSON
);
CREATE TABLE IF NOT EXISTS runs (
    id           INTEGER PRIMARY KEY,
    started      REAL NOT NULL,              -- unix time, s
    finished     REAL,
    status       TEXT NOT NULL,              -- running | finished | interrupted | failed
    workers      TEXT,                       -- 'local:2' or the scheduler address
    code_version TEXT,
    config       TEXT,                       -- JSON of the config this run used
    summary      TEXT                        -- JSON counts and writer statistics
);
CREATE TABLE IF NOT EXISTS hosts (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    formula           TEXT,
    prototype         TEXT,
    source            TEXT,
    elements          TEXT,                  -- JSON list, formula order
    composition       TEXT,                  -- JSON {element: atomic fraction}
    structure_hash    TEXT NOT NULL,         -- of the input structure
    status            TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    reason            TEXT,                  -- failure reason (registry in tasks.py)
    error             TEXT,                  -- one-line detail
    n_atoms           INTEGER,               -- primitive cell
    supercell_atoms   INTEGER,               -- doped supercell
    fc_supercell_atoms INTEGER,              -- force-constant supercell
    n_imaginary       INTEGER,               -- q-mesh modes below -tol
    min_frequency_mev REAL,
    recommendations   TEXT,                  -- JSON list of DopantRecord dicts
    pool              TEXT,                  -- JSON list: true dopants are drawn from these
    potential         TEXT,
    potential_version TEXT,
    tier              TEXT,
    grid_id           TEXT,
    timings           TEXT,                  -- JSON stage -> seconds
    worker            TEXT,
    code_version      TEXT,
    created           REAL,
    input             BLOB,
    pristine          BLOB,
    spectra           BLOB
);
CREATE TABLE IF NOT EXISTS patches (
    host_id      INTEGER NOT NULL REFERENCES hosts(id),
    site         INTEGER NOT NULL,           -- primitive-cell atom index
    element      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    reason       TEXT,
    error        TEXT,
    force_calls  INTEGER,
    timings      TEXT,
    worker       TEXT,
    code_version TEXT,
    created      REAL,
    data         BLOB,
    PRIMARY KEY (host_id, site, element)
);
CREATE TABLE IF NOT EXISTS samples (
    id                  INTEGER PRIMARY KEY,     -- sample_id(host, sample_index)
    host_id             INTEGER NOT NULL REFERENCES hosts(id),
    host                TEXT NOT NULL,
    prototype           TEXT,
    sample_index        INTEGER NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    reason              TEXT,
    error               TEXT,
    n_dopants           INTEGER,
    dopants             TEXT,    -- JSON [[element, site, requested fraction, atoms], ...]
    concentrations      TEXT,    -- JSON {element: realised atomic fraction}
    total_concentration REAL,
    candidates          TEXT,    -- JSON list (true dopants + distractors), Z order
    distractors         TEXT,    -- JSON list
    tier                TEXT,
    potential           TEXT,
    grid_id             TEXT,
    seed                INTEGER,                 -- the sample's seed (all its draws)
    supercell_atoms     INTEGER,
    n_imaginary         INTEGER,
    min_frequency_mev   REAL,
    timings             TEXT,
    worker              TEXT,
    code_version        TEXT,
    created             REAL,
    arrays              BLOB,
    UNIQUE (host_id, sample_index)
);
CREATE INDEX IF NOT EXISTS samples_status ON samples (status, reason);
CREATE INDEX IF NOT EXISTS samples_host ON samples (host);
"""

HOST_COLUMNS = (
    "name", "formula", "prototype", "source", "elements", "composition", "structure_hash", "status", "reason",
    "error", "n_atoms", "supercell_atoms", "fc_supercell_atoms", "n_imaginary", "min_frequency_mev",
    "recommendations", "pool", "potential", "potential_version", "tier", "grid_id", "timings", "worker",
    "code_version", "created", "input", "pristine", "spectra",
)
PATCH_COLUMNS = ("host_id", "site", "element", "status", "reason", "error", "force_calls", "timings", "worker",
                 "code_version", "created", "data")
SAMPLE_COLUMNS = (
    "id", "host_id", "host", "prototype", "sample_index", "status", "reason", "error", "n_dopants", "dopants",
    "concentrations", "total_concentration", "candidates", "distractors", "tier", "potential", "grid_id", "seed",
    "supercell_atoms", "n_imaginary", "min_frequency_mev", "timings", "worker", "code_version", "created", "arrays",
)
_JSON_COLUMNS = frozenset({"elements", "composition", "recommendations", "pool", "timings", "dopants",
                           "concentrations", "candidates", "distractors", "config", "summary"})


# --------------------------------------------------------------------------- arrays
def pack_arrays(**arrays) -> bytes:
    """Compress named arrays into one blob (``numpy.savez_compressed``; no pickle)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def unpack_arrays(blob: bytes) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_arrays`; object arrays are refused."""
    if blob is None:
        raise DefectnetError("row has no array data")
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def sample_id(host: str, sample_index: int) -> int:
    """Deterministic 63-bit row id of sample ``sample_index`` of ``host``.

    The same (host, index) gets the same id in every run, so an interrupted and an
    uninterrupted run produce the same ids, and a re-committed sample collides with its
    first commit instead of being duplicated.
    """
    digest = hashlib.blake2b(f"{host}\x00{int(sample_index)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def stored_hosts(path) -> set[str]:
    """Names of the hosts the store at ``path`` holds (empty if there is no store yet)."""
    if not Path(path).is_file():
        return set()
    with Store(path, "r") as store:
        return {h["name"] for h in store.hosts()}


def _encode(column: str, value):
    if value is None:
        return None
    if column in _JSON_COLUMNS:
        return json.dumps(value, sort_keys=True, default=_json_default)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _decode_row(row: sqlite3.Row, blobs: bool = False) -> dict:
    out = {}
    for k in row.keys():
        v = row[k]
        if k in _JSON_COLUMNS and v is not None:
            v = json.loads(v)
        elif isinstance(v, bytes) and not blobs:
            continue
        out[k] = v
    return out


# --------------------------------------------------------------------------- the store
@dataclass
class IntegrityReport:
    """Result of :meth:`Store.check`: ``ok`` is True when ``problems`` is empty."""

    problems: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            return "integrity check passed: " + ", ".join(f"{k} {v}" for k, v in self.counts.items())
        return "integrity check FAILED:\n  " + "\n  ".join(self.problems)


class Store:
    """A dataset store file.

    Parameters
    ----------
    path : str or Path
        The SQLite file.
    mode : {'r', 'w'}
        ``'r'`` opens an existing store read-only; ``'w'`` opens or creates it for writing
        and takes an exclusive lock (a second writer gets a one-line error), released when
        the process ends, however it ends.

    Notes
    -----
    One writer, many readers: WAL journaling with ``synchronous=NORMAL`` — a committed
    transaction survives the writer being killed (it is in the WAL file the next open
    replays); only a power loss can roll back the last few commits, never corrupt the file.
    """

    def __init__(self, path, mode: str = "r"):
        if mode not in ("r", "w"):
            raise DefectnetError(f"store mode must be 'r' or 'w', got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self._lock_fh = None
        if mode == "r":
            if not self.path.is_file():
                raise DefectnetError("no such dataset store", source=str(self.path))
            # Not read-only at the SQLite level: opening a WAL store left by a killed writer replays its WAL.
            self.conn = sqlite3.connect(self.path, timeout=30.0)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        try:
            self.conn.execute("PRAGMA foreign_keys = ON")
            if mode == "w":
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")
                self.conn.executescript(_SCHEMA)
                if self.get_meta("schema_version") is None:
                    self._set_meta({"schema_version": SCHEMA_VERSION, "created": time.time()})
            self._check_version()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise DefectnetError(f"not a defectnet dataset store ({exc})", source=str(self.path)) from None

    # ------------------------------------------------------------------ lifecycle
    def _acquire_lock(self):
        import fcntl

        lock_path = self.path.with_name(self.path.name + ".lock")
        fh = open(lock_path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise DefectnetError(f"another process (pid {holder}) is writing to this store", source=str(self.path)) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh

    def _check_version(self):
        v = self.get_meta("schema_version")
        if v is None:
            raise DefectnetError("not a defectnet dataset store (no schema_version)", source=str(self.path))
        if int(v) != SCHEMA_VERSION:
            raise DefectnetError(f"store schema version {v}; this defectnet reads version {SCHEMA_VERSION}",
                                 source=str(self.path))

    def close(self):
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
            self.conn = None
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ meta and runs
    def get_meta(self, key: str, default=None):
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return default
        return default if row is None else json.loads(row[0])

    def meta(self) -> dict:
        return {r[0]: json.loads(r[1]) for r in self.conn.execute("SELECT key, value FROM meta")}

    def _set_meta(self, values: dict):
        with self._transaction():
            self.conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(k, json.dumps(v, sort_keys=True, default=_json_default)) for k, v in values.items()],
            )

    def set_meta(self, **values):
        self._require_writer()
        self._set_meta(values)

    def start_run(self, *, workers: str, code_version: str, config: dict) -> int:
        self._require_writer()
        with self._transaction():
            # A run still 'running' was killed: say so.
            self.conn.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
            cur = self.conn.execute(
                "INSERT INTO runs (started, status, workers, code_version, config) VALUES (?, 'running', ?, ?, ?)",
                (time.time(), workers, code_version, _encode("config", config)),
            )
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str, summary: dict):
        self._require_writer()
        with self._transaction():
            self.conn.execute("UPDATE runs SET finished = ?, status = ?, summary = ? WHERE id = ?",
                              (time.time(), status, _encode("summary", summary), run_id))

    def runs(self) -> list[dict]:
        return [_decode_row(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY id")]

    # ------------------------------------------------------------------ writing
    def _require_writer(self):
        if self.mode != "w":
            raise DefectnetError("store is open read-only", source=str(self.path))

    def _transaction(self):
        return _Transaction(self.conn)

    @staticmethod
    def _insert_sql(table: str, columns: tuple, row: dict, conflict: str) -> tuple[str, list]:
        unknown = set(row) - set(columns)
        if unknown:
            raise DefectnetError(f"unknown {table} columns {sorted(unknown)}")
        cols = [c for c in columns if c in row]
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) {conflict}"
        return sql, [_encode(c, row[c]) for c in cols]

    def add_host(self, row: dict) -> int:
        """Insert (or, for a host that failed before, replace) one host row; returns its id."""
        self._require_writer()
        sql, values = self._insert_sql("hosts", HOST_COLUMNS, row, "")
        with self._transaction():
            self.conn.execute("DELETE FROM hosts WHERE name = ? AND status = 'failed'", (row["name"],))
            cur = self.conn.execute(sql.replace("INSERT", "INSERT OR IGNORE", 1), values)
            if cur.rowcount == 0:  # already there: keep the first commit
                return self.host_id(row["name"])
        return int(cur.lastrowid)

    def add_patch(self, row: dict) -> bool:
        """Insert one patch row; False if it was already there (nothing changes)."""
        self._require_writer()
        sql, values = self._insert_sql("patches", PATCH_COLUMNS, row, "ON CONFLICT DO NOTHING")
        with self._transaction():
            return self.conn.execute(sql, values).rowcount == 1

    def add_samples(self, rows: list[dict]) -> int:
        """Insert the rows of one finished task in one transaction; returns how many were new.

        A row whose (host, sample_index) is already stored is ignored, so committing a task
        twice (a resumed run re-computing work in flight) never duplicates a sample.
        """
        self._require_writer()
        if not rows:
            return 0
        new = 0
        with self._transaction():
            for row in rows:
                row = dict(row)
                row.setdefault("id", sample_id(row["host"], row["sample_index"]))
                sql, values = self._insert_sql("samples", SAMPLE_COLUMNS, row, "ON CONFLICT DO NOTHING")
                new += self.conn.execute(sql, values).rowcount
        return new

    def delete_failed(self, reasons=None) -> dict:
        """Delete failed hosts, patches and samples (optionally only these reasons) so they are retried."""
        self._require_writer()
        where, args = ("", ()) if not reasons else (f" AND reason IN ({', '.join('?' * len(reasons))})", tuple(reasons))
        out = {}
        with self._transaction():
            out["samples"] = self.conn.execute(f"DELETE FROM samples WHERE status = 'failed'{where}", args).rowcount
            out["patches"] = self.conn.execute(f"DELETE FROM patches WHERE status = 'failed'{where}", args).rowcount
            failed_hosts = [r[0] for r in self.conn.execute(f"SELECT id FROM hosts WHERE status = 'failed'{where}", args)]
            for hid in failed_hosts:  # a failed host has no patches or samples, but be safe
                self.conn.execute("DELETE FROM samples WHERE host_id = ?", (hid,))
                self.conn.execute("DELETE FROM patches WHERE host_id = ?", (hid,))
                self.conn.execute("DELETE FROM hosts WHERE id = ?", (hid,))
            out["hosts"] = len(failed_hosts)
        return out

    # ------------------------------------------------------------------ reading
    def host_id(self, name: str) -> int | None:
        row = self.conn.execute("SELECT id FROM hosts WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def hosts(self, status: str | None = None, *, blobs: bool = False) -> list[dict]:
        """Host rows (decoded JSON; blobs only if ``blobs``), by id."""
        cols = "*" if blobs else ", ".join(["id"] + [c for c in HOST_COLUMNS if c not in ("input", "pristine", "spectra")])
        sql = f"SELECT {cols} FROM hosts" + (" WHERE status = ?" if status else "") + " ORDER BY id"
        return [_decode_row(r, blobs) for r in self.conn.execute(sql, (status,) if status else ())]

    def host(self, name: str, *, blobs: bool = True) -> dict | None:
        row = self.conn.execute("SELECT * FROM hosts WHERE name = ?", (name,)).fetchone()
        return None if row is None else _decode_row(row, blobs)

    def patches(self, host_id: int, *, blobs: bool = False) -> list[dict]:
        return [_decode_row(r, blobs) for r in self.conn.execute(
            "SELECT * FROM patches WHERE host_id = ? ORDER BY site, element", (host_id,))]

    def done_samples(self, host_id: int) -> dict[int, str]:
        """sample_index -> status of the samples stored for a host."""
        return {int(i): s for i, s in self.conn.execute(
            "SELECT sample_index, status FROM samples WHERE host_id = ?", (host_id,))}

    def samples(self, status: str | None = "ok", *, blobs: bool = False, order: str = "host, sample_index"):
        """Iterate over sample rows (decoded JSON; the ``arrays`` blob only if ``blobs``)."""
        cols = "*" if blobs else ", ".join(c for c in SAMPLE_COLUMNS if c != "arrays")
        sql = f"SELECT {cols} FROM samples" + (" WHERE status = ?" if status else "") + f" ORDER BY {order}"
        for r in self.conn.execute(sql, (status,) if status else ()):
            yield _decode_row(r, blobs)

    def counts(self) -> dict:
        """Rows per table and status."""
        out = {}
        for table in ("hosts", "patches", "samples"):
            out[table] = {s: n for s, n in self.conn.execute(f"SELECT status, COUNT(*) FROM {table} GROUP BY status")}
        return out

    def failures(self) -> list[tuple[str, str, int]]:
        """(stage, reason, count) of every failed row, most frequent first."""
        rows = []
        for stage, table in (("host", "hosts"), ("patch", "patches"), ("sample", "samples")):
            rows += [(stage, r or "unknown", n) for r, n in self.conn.execute(
                f"SELECT reason, COUNT(*) FROM {table} WHERE status = 'failed' GROUP BY reason")]
        return sorted(rows, key=lambda t: (-t[2], t[0], t[1]))

    # ------------------------------------------------------------------ integrity
    def check(self, *, deep: bool = True) -> IntegrityReport:
        """Check the file and the rows: SQLite integrity, keys, ids, statuses and (``deep``) every blob.

        Problems checked: SQLite ``integrity_check`` and ``foreign_key_check``; schema
        version; duplicated (host, sample_index) pairs; sample ids that are not
        :func:`sample_id` of their host and index; samples of a failed or missing host;
        failed rows without a reason; ok rows without data; labels that do not follow from
        the stored placement (:func:`label_problem`: concentrations, total and number of
        dopants against the atoms placed; when ``deep``, also against the dopant indices and
        the dopants' partial PDoS); and, when ``deep``, blobs that do not decode or spectra of
        the wrong shape, not finite or not of unit area.
        """
        rep = IntegrityReport()
        p = rep.problems
        res = [r[0] for r in self.conn.execute("PRAGMA integrity_check")]
        if res != ["ok"]:
            p += [f"sqlite integrity_check: {r}" for r in res[:10]]
        fk = self.conn.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            p.append(f"{len(fk)} rows reference a missing row (foreign_key_check)")
        if self.get_meta("schema_version") != SCHEMA_VERSION:
            p.append(f"schema_version {self.get_meta('schema_version')!r} != {SCHEMA_VERSION}")
        dup = self.conn.execute(
            "SELECT host_id, sample_index, COUNT(*) FROM samples GROUP BY host_id, sample_index HAVING COUNT(*) > 1"
        ).fetchall()
        if dup:
            p.append(f"{len(dup)} duplicated (host, sample_index) pairs")
        orphans = self.conn.execute(
            "SELECT COUNT(*) FROM samples s LEFT JOIN hosts h ON s.host_id = h.id "
            "WHERE h.id IS NULL OR h.status != 'ok' OR h.name != s.host").fetchone()[0]
        if orphans:
            p.append(f"{orphans} samples belong to a missing or failed host, or name the wrong host")
        for table in ("hosts", "patches", "samples"):
            n = self.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE status = 'failed' AND "
                                  "(reason IS NULL OR reason = '')").fetchone()[0]
            if n:
                p.append(f"{n} failed {table} rows have no reason")
        blob_of = {"hosts": "pristine", "patches": "data", "samples": "arrays"}
        for table, col in blob_of.items():
            n = self.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE status = 'ok' AND {col} IS NULL").fetchone()[0]
            if n:
                p.append(f"{n} ok {table} rows have no {col} data")
        grid = self.get_meta("grid")
        n_bins = int(grid["n_bins"]) if grid else None
        widths = None
        if grid:
            from defectnet.grid import EnergyGrid

            widths = EnergyGrid.from_dict(grid).widths
        bad_ids, bad_blobs = 0, []
        host_elements = {name: set(json.loads(comp or "{}")) for name, comp in
                         self.conn.execute("SELECT name, composition FROM hosts")}
        for r in self.conn.execute("SELECT id, host, sample_index, status, n_dopants, dopants, concentrations, "
                                   "total_concentration, supercell_atoms, n_imaginary, arrays FROM samples"):
            if r["id"] != sample_id(r["host"], r["sample_index"]):
                bad_ids += 1
            if r["status"] != "ok":
                continue
            arrays, problem = None, None
            if deep:
                arrays, problem = _check_sample_blob(r["arrays"], n_bins, widths)
            problem = problem or label_problem(_decode_row(r), host_elements.get(r["host"], set()), arrays, widths)
            if problem:
                bad_blobs.append(f"sample {r['host']}#{r['sample_index']}: {problem}")
        if bad_ids:
            p.append(f"{bad_ids} sample ids do not match sample_id(host, sample_index)")
        p += bad_blobs[:20] + ([f"... and {len(bad_blobs) - 20} more"] if len(bad_blobs) > 20 else [])
        if deep:
            for table, col in (("hosts", "pristine"), ("hosts", "spectra"), ("patches", "data")):
                for (blob,) in self.conn.execute(f"SELECT {col} FROM {table} WHERE status = 'ok'"):
                    try:
                        unpack_arrays(blob)
                    except Exception as exc:  # any decoding error is a corrupt row
                        p.append(f"{table}.{col}: blob does not decode ({type(exc).__name__})")
        c = self.counts()
        rep.counts = {f"{t} {s}": n for t, by in c.items() for s, n in sorted(by.items())}
        return rep


def _check_sample_blob(blob, n_bins, widths) -> tuple[dict | None, str | None]:
    """(the sample's arrays, or None if they do not decode; what is wrong with them, or None)."""
    try:
        a = unpack_arrays(blob)
    except Exception as exc:  # any decoding error is a corrupt row
        return None, f"arrays do not decode ({type(exc).__name__})"
    for key in ("doped", "doped_gpdos"):
        v = a.get(key)
        if v is None:
            return a, f"no {key!r} array"
        if n_bins is not None and v.shape != (n_bins,):
            return a, f"{key} has shape {v.shape}, expected ({n_bins},)"
        if not np.all(np.isfinite(v)):
            return a, f"{key} is not finite"
        if widths is not None and abs(float(np.sum(v * widths)) - 1.0) > 1e-3:
            return a, f"{key} area {float(np.sum(v * widths)):.6f} != 1"
    return a, None


def label_problem(row: dict, host_elements: set, arrays: dict | None = None, widths=None) -> str | None:
    """What is wrong with a sample's labels against what the store holds of its structure (None if nothing).

    The labels are ``concentrations`` {element: atomic fraction}, ``total_concentration`` and
    ``n_dopants``; the structure is what placement did: the atoms of each dopant (``dopants``
    [[element, site, requested fraction, atoms], ...]) in a supercell of ``supercell_atoms``,
    and, given the sample's ``arrays``, its ``dopant_indices`` and per-element partial PDoS
    (each normalised to its element's share of the atoms, so a dopant that is not a host
    element has a partial of area = its concentration). A concentration must be its atoms / the
    supercell's atoms (to round-off), the total their sum, the dopant indices as many as the
    atoms, and a dopant's partial area its concentration to within half an atom (and a third of
    an atom per imaginary mode, which falls off the grid, ``n_imaginary``). Rows without
    atom counts (written before they were stored) are not checked.
    """
    dopants, conc = row.get("dopants") or [], row.get("concentrations") or {}
    counts: dict[str, int] = {}
    for entry in dopants:
        if len(entry) < 4 or entry[3] is None:
            return None
        counts[entry[0]] = counts.get(entry[0], 0) + int(entry[3])
    if row.get("n_dopants") is not None and row["n_dopants"] != len(dopants):
        return f"n_dopants is {row['n_dopants']} but {len(dopants)} dopants were placed"
    if set(conc) != set(counts):
        return f"concentrations name {sorted(conc)} but the dopants placed are {sorted(counts)}"
    n = row.get("supercell_atoms")
    for el, c in sorted(conc.items()):
        if n and abs(c * n - counts[el]) > 1e-6:
            return (f"concentration of {el} is {c:.6g}, but {counts[el]} atoms of {el} were placed in its supercell "
                    f"of {n}: expected {counts[el] / n:.6g}")
    total = row.get("total_concentration")
    if total is not None and abs(total - sum(conc.values())) > 1e-9:
        return f"total_concentration is {total:.6g}, the concentrations add up to {sum(conc.values()):.6g}"
    if arrays is None:
        return None
    idx = arrays.get("dopant_indices")
    if idx is not None and len(idx) != sum(counts.values()):
        return f"{len(idx)} dopant indices for {sum(counts.values())} dopant atoms"
    if n and widths is not None and "partials" in arrays:
        area = {str(el): float(np.sum(p * widths)) for el, p in zip(arrays["partial_elements"], arrays["partials"])}
        lost = int(row.get("n_imaginary") or 0)
        tol = (0.5 + lost / 3) / n  # half an atom, and the modes off the grid (each 1/3 of an atom's)
        for el, c in sorted(conc.items()):
            if el not in host_elements and abs(area.get(el, 0.0) - c) > tol:
                return (f"concentration of {el} is {c:.6g}, but its partial PDoS holds {area.get(el, 0.0):.6g} of the "
                        f"modes: expected the same to within half an atom"
                        + (f" and its {lost} imaginary modes" if lost else "") + f" ({tol:.2g})")
    return None


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
