"""The integrity check of a store: the file, its keys and ids, and every row's labels and arrays."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from defectnet.data.schema import SCHEMA_VERSION, decode_row, sample_id, unpack_arrays


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


def check_store(store, *, deep: bool = True) -> IntegrityReport:
    """Check the file and the rows: SQLite integrity, keys, ids, statuses and (``deep``) every blob.

    Problems checked: SQLite ``integrity_check`` and ``foreign_key_check``; schema
    version; duplicated (host, sample_index) pairs; sample ids that are not
    :func:`sample_id` of their host and index; samples of a failed or missing host;
    failed rows without a reason; ok rows without data; labels that do not follow from
    the stored placement (:func:`label_problem`: concentrations, total and number of
    dopants against the atoms placed; when ``deep``, also against the dopant indices and
    the dopants' partial PDoS); and, when ``deep``, blobs that do not decode or spectra of
    the wrong shape, not finite or not of unit area. ``store`` is an open
    :class:`~defectnet.data.store.Store`; :meth:`Store.check <defectnet.data.store.Store.check>` calls this.
    """
    rep = IntegrityReport()
    p = rep.problems
    res = [r[0] for r in store.conn.execute("PRAGMA integrity_check")]
    if res != ["ok"]:
        p += [f"sqlite integrity_check: {r}" for r in res[:10]]
    fk = store.conn.execute("PRAGMA foreign_key_check").fetchall()
    if fk:
        p.append(f"{len(fk)} rows reference a missing row (foreign_key_check)")
    if store.get_meta("schema_version") != SCHEMA_VERSION:
        p.append(f"schema_version {store.get_meta('schema_version')!r} != {SCHEMA_VERSION}")
    dup = store.conn.execute(
        "SELECT host_id, sample_index, COUNT(*) FROM samples GROUP BY host_id, sample_index HAVING COUNT(*) > 1"
    ).fetchall()
    if dup:
        p.append(f"{len(dup)} duplicated (host, sample_index) pairs")
    orphans = store.conn.execute(
        "SELECT COUNT(*) FROM samples s LEFT JOIN hosts h ON s.host_id = h.id "
        "WHERE h.id IS NULL OR h.status != 'ok' OR h.name != s.host").fetchone()[0]
    if orphans:
        p.append(f"{orphans} samples belong to a missing or failed host, or name the wrong host")
    for table in ("hosts", "patches", "samples"):
        n = store.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE status = 'failed' AND "
                              "(reason IS NULL OR reason = '')").fetchone()[0]
        if n:
            p.append(f"{n} failed {table} rows have no reason")
    blob_of = {"hosts": "pristine", "patches": "data", "samples": "arrays"}
    for table, col in blob_of.items():
        n = store.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE status = 'ok' AND {col} IS NULL").fetchone()[0]
        if n:
            p.append(f"{n} ok {table} rows have no {col} data")
    grid = store.get_meta("grid")
    n_bins = int(grid["n_bins"]) if grid else None
    widths = None
    if grid:
        from defectnet.grid import EnergyGrid

        widths = EnergyGrid.from_dict(grid).widths
    bad_ids, bad_blobs = 0, []
    host_elements = {name: set(json.loads(comp or "{}")) for name, comp in
                     store.conn.execute("SELECT name, composition FROM hosts")}
    for r in store.conn.execute("SELECT id, host, sample_index, status, n_dopants, dopants, concentrations, "
                               "total_concentration, supercell_atoms, n_imaginary, arrays FROM samples"):
        if r["id"] != sample_id(r["host"], r["sample_index"]):
            bad_ids += 1
        if r["status"] != "ok":
            continue
        arrays, problem = None, None
        if deep:
            arrays, problem = _check_sample_blob(r["arrays"], n_bins, widths)
        problem = problem or label_problem(decode_row(r), host_elements.get(r["host"], set()), arrays, widths)
        if problem:
            bad_blobs.append(f"sample {r['host']}#{r['sample_index']}: {problem}")
    if bad_ids:
        p.append(f"{bad_ids} sample ids do not match sample_id(host, sample_index)")
    p += bad_blobs[:20] + ([f"... and {len(bad_blobs) - 20} more"] if len(bad_blobs) > 20 else [])
    if deep:
        for table, col in (("hosts", "pristine"), ("hosts", "spectra"), ("patches", "data")):
            for (blob,) in store.conn.execute(f"SELECT {col} FROM {table} WHERE status = 'ok'"):
                try:
                    unpack_arrays(blob)
                except Exception as exc:  # any decoding error is a corrupt row
                    p.append(f"{table}.{col}: blob does not decode ({type(exc).__name__})")
    c = store.counts()
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
