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

import json
import os
import sqlite3
import time
from pathlib import Path

from defectnet.data.integrity import IntegrityReport, check_store, label_problem
from defectnet.data.schema import (HOST_COLUMNS, PATCH_COLUMNS, SAMPLE_COLUMNS, SCHEMA, SCHEMA_VERSION, decode_row,
                                   encode, pack_arrays, sample_id, unpack_arrays)
from defectnet.errors import DefectnetError
from defectnet.output import json_default

__all__ = ["HOST_COLUMNS", "PATCH_COLUMNS", "SAMPLE_COLUMNS", "SCHEMA_VERSION", "IntegrityReport", "Store",
           "label_problem", "pack_arrays", "sample_id", "stored_hosts", "unpack_arrays"]


def stored_hosts(path) -> set[str]:
    """Names of the hosts the store at ``path`` holds (empty if there is no store yet)."""
    if not Path(path).is_file():
        return set()
    with Store(path, "r") as store:
        return {h["name"] for h in store.hosts()}


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
                self.conn.executescript(SCHEMA)
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
                [(k, json.dumps(v, sort_keys=True, default=json_default)) for k, v in values.items()],
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
                (time.time(), workers, code_version, encode("config", config)),
            )
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str, summary: dict):
        self._require_writer()
        with self._transaction():
            self.conn.execute("UPDATE runs SET finished = ?, status = ?, summary = ? WHERE id = ?",
                              (time.time(), status, encode("summary", summary), run_id))

    def runs(self) -> list[dict]:
        return [decode_row(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY id")]

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
        return sql, [encode(c, row[c]) for c in cols]

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
        return [decode_row(r, blobs) for r in self.conn.execute(sql, (status,) if status else ())]

    def host(self, name: str, *, blobs: bool = True) -> dict | None:
        row = self.conn.execute("SELECT * FROM hosts WHERE name = ?", (name,)).fetchone()
        return None if row is None else decode_row(row, blobs)

    def patches(self, host_id: int, *, blobs: bool = False) -> list[dict]:
        return [decode_row(r, blobs) for r in self.conn.execute(
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
            yield decode_row(r, blobs)

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
        """Check the file and the rows: SQLite integrity, keys, ids, statuses and (``deep``) every blob; what is
        checked: :func:`~defectnet.data.integrity.check_store`."""
        return check_store(self, deep=deep)


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
