"""The store's layout and encoding: the SQLite schema and its columns, array blobs, row ids, and how values
go into columns and rows come out (:mod:`defectnet.data.store` describes the layout)."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.output import json_default

#: Version of the SQLite layout below; a store of another version is refused.
SCHEMA_VERSION = 1

SCHEMA = """
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


def encode(column: str, value):
    """``value`` as stored in ``column``: JSON text for the JSON columns, a Python scalar for a numpy one."""
    if value is None:
        return None
    if column in _JSON_COLUMNS:
        return json.dumps(value, sort_keys=True, default=json_default)
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode_row(row: sqlite3.Row, blobs: bool = False) -> dict:
    """``row`` as a dict, its JSON columns decoded; blob columns only if ``blobs``."""
    out = {}
    for k in row.keys():
        v = row[k]
        if k in _JSON_COLUMNS and v is not None:
            v = json.loads(v)
        elif isinstance(v, bytes) and not blobs:
            continue
        out[k] = v
    return out
