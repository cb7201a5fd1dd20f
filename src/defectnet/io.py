"""Read and write spectrum files; read crystal structures.

Every problem with a file raises :class:`~defectnet.errors.DefectnetError` naming the
file, the line where it applies, and what was expected; no numpy or parser exception
escapes from a reader.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np

from defectnet.elements import check_element
from defectnet.errors import DefectnetError, exception_reason
from defectnet.spectrum import Spectrum
from defectnet.units import ENERGY_UNIT_TO_MEV, canonical_unit, to_mev

MIN_POINTS = 5
NEGATIVE_NOISE = 1e-6  # negatives down to -NEGATIVE_NOISE × max are numerical noise: clipped to 0
META_TAG = "defectnet-spectrum"  # comment line carrying exact edges, kind and meta in our own files
PHONOPY_NAMES = ("total_dos.dat", "projected_dos.dat")
# An energy-like column name: the word, then the end or a non-letter ("E (meV)", "energy_meV").
_ENERGY_NAME = re.compile(r"^(e|en|energy|freq|frequency|omega|w|nu|wavenumber)(?![a-z])", re.I)
_TOTAL_NAMES = ("dos", "pdos", "gpdos", "intensity", "g", "g(e)", "s(e)", "counts")  # after "total"; not "S" (sulfur)
# A column of 1σ uncertainties of the total (ISIS/VISION "Error", Mantid's "E" after "X , Y").
_ERROR_NAMES = ("error", "errors", "err", "error(s)", "sigma", "uncertainty", "stderr", "dy", "ds", "yerr",
                "y_err", "s_err", "e(s)")
#: With an error column, negatives within this many σ of 0 are counting noise: kept. Not 3: a file of 640 bins
#: of noise about 0 has one beyond 3σ more often than not (58 %), beyond 5σ once in 5,000 files.
ERROR_SIGMAS = 5.0
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_WRITE_FORMATS = {".csv": "csv", ".dat": "text", ".txt": "text"}


class UnitGuessWarning(UserWarning):
    """A file's energy unit was not stated and was guessed (also recorded in ``meta["unit_inferred"]``)."""


def _unit_from_name(name: str) -> str | None:
    n = name.lower()
    if "mev" in n:
        return "meV"
    if "thz" in n:
        return "THz"
    if "cm" in n or "wavenumber" in n:
        return "cm-1"
    if "ev" in re.split(r"[^a-z]+", n):  # E_eV, energy (eV); not "level"
        return "eV"
    return None


def _unit_from_comments(comments) -> str | None:
    """The unit if the comments name exactly one (e.g. ``# Frequency (THz)  DOS``)."""
    found = set()
    for _, c in comments:
        if META_TAG in c:
            continue
        for m in re.finditer(r"\b(mev|thz|ev)\b|cm-1|cm\^-1|cm⁻¹|1/cm|wavenumber|\bdeltae\b", c, re.I):
            found.add(_unit_from_name(m.group(0)) or ("meV" if m.group(0).lower() == "deltae" else "cm-1"))
    return found.pop() if len(found) == 1 else None


def _infer_unit(e_max: float) -> tuple[str, str]:
    if e_max <= 40.0:
        return "THz", "max energy ≤ 40 → THz"
    if e_max <= 600.0:
        return "meV", "40 < max energy ≤ 600 → meV"
    return "cm-1", "max energy > 600 → cm-1"


def read_spectrum(path, *, unit=None, energy_column=None, column=None, symbols=None,
                  error_column=None) -> Spectrum:
    """Read a spectrum from a file into a :class:`Spectrum` (meV, density per meV).

    Formats
    -------
    * whitespace-separated columns with ``#`` comments (``.dat``, ``.txt``, anything);
    * CSV (``.csv`` or commas in the data) with an optional header row;
    * ISIS/VISION-style ASCII with an error column: energy, S, error — Mantid's ``SaveAscii``
      (``# X , Y , E`` header, an optional spectrum-number line before the data, an optional
      fourth ``DX`` column, ignored) or any header naming the third column ``error``/``err``/
      ``sigma``/``dy`` ...; the errors are kept as :attr:`Spectrum.errors`;
    * phonopy ``total_dos.dat`` (frequency, DOS) and ``projected_dos.dat`` (frequency, one
      column per atom; the total is their sum, and ``symbols`` — one element per atom —
      groups them into per-element partials), recognised by the file name or a
      ``# Sigma = ...`` line;
    * files written by :func:`write_spectrum` (exact edges, kind, meta and errors are restored);
    * HDF5 (recognised by its signature, whatever the extension): a Mantid-processed NeXus
      1-D workspace or an NXSPE file, read by :func:`defectnet.nexus.read_nexus`.

    Columns: the energy column is ``energy_column`` (name or 0-based index), else the one
    whose header name looks like an energy (``energy``, ``E``, ``energy_meV``,
    ``frequency_THz``, ``omega_cm-1`` ...), else the first. The total is the column named
    ``column`` if given (a header name), else the one named ``total`` (or ``dos``, ``intensity``
    ...), else the first other column (the name read is ``meta["column"]``). The 1σ errors of
    the total are the column ``error_column`` (name or index) if given, else the one named
    like an error (``meta["errors_column"]``); an unnamed third column is not taken as errors
    unless ``error_column`` says so. Other columns named by an element symbol become
    partials; the rest are ignored (listed in ``meta["ignored_columns"]``).

    Units, first rule that applies: ``unit=``; the energy column's header name (meV / THz
    / cm-1 / eV, e.g. ``E_eV``); the unit our own files record; the one unit the ``#`` comments
    name, if they name exactly one (Mantid's ``DeltaE`` is meV, ``DeltaE_inWavenumber`` cm-1);
    phonopy files are THz; else inferred from the largest energy E_max in the file: E_max ≤ 40
    → THz, ≤ 600 → meV, else cm-1 — recorded in ``meta["unit_inferred"]`` with a warning, as
    the guess fails for e.g. a meV spectrum of a heavy host that stops at 30. Every unit stated
    (``unit=``, header, tag, comment, phonopy) is listed in ``meta["unit_sources"]``:
    :func:`defectnet.predict.predict_defects` compares them, and a guessed unit, with the
    host's band edge. Errors are converted like the values (per unit → per meV).

    Checks: missing or empty file, unparsable numbers, fewer than 2 columns or ragged rows,
    a column count other than the ``X , Y , E`` header's, a second spectrum, fewer than 5
    points, NaN/inf, duplicate energies, negative errors and negative intensities raise
    :class:`DefectnetError` with the file and line. Negatives ≥ -1e-6 × max — or, with
    errors, within 5σ of 0 — are noise: the first clipped to 0 (count in ``meta["clipped_negatives"]``), the
    second kept, as counting noise the errors describe (count in ``meta["negatives_within_errors"]``);
    unsorted rows are sorted (``meta["sorted_on_read"]``). Rows at negative energies are kept
    and counted (``meta["negative_energy_rows"]``).
    """
    p = Path(path)
    if p.is_file() and _is_hdf5(p):
        from defectnet.nexus import read_nexus  # h5py only when an HDF5 file is read

        return read_nexus(p, unit=unit)
    return _read_text_spectrum(p, str(path), unit, energy_column, column, symbols, error_column)


def _is_hdf5(p: Path) -> bool:
    try:
        with p.open("rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def _read_text_spectrum(p, src, unit, energy_column, column, symbols, error_column) -> Spectrum:
    """:func:`read_spectrum` for text files."""
    lines = _read_lines(p, src)
    comments, header, rows, linenos, spectrum_no = _split(lines, src)
    if not rows:
        raise DefectnetError("empty file: no data rows; expected columns of energy and intensity", source=src)
    ncols = len(rows[0])
    if len(rows) < MIN_POINTS:
        raise DefectnetError(f"only {len(rows)} data rows; expected at least {MIN_POINTS} points", source=src)
    data = np.array(rows, dtype=float)
    bad = ~np.all(np.isfinite(data), axis=1)
    if bad.any():
        raise DefectnetError("NaN or inf value; expected finite numbers", source=src, line=linenos[int(np.argmax(bad))])

    tagged = _tagged_meta(comments, src)
    phonopy = not tagged and header is None and (
        p.name in PHONOPY_NAMES or any(re.match(r"#\s*sigma\s*=", c, re.I) for _, c in comments))
    if header is None and not phonopy:
        header = _header_from_comments(comments, ncols)
    header, mantid = _mantid_header(header, comments, ncols, linenos[0], src)
    meta: dict = dict(tagged.get("meta", {})) if tagged else {}
    fmt = "phonopy" if phonopy else "mantid-ascii" if mantid else "csv" if p.suffix.lower() == ".csv" else "text"
    meta.update(source=src, format=fmt)
    if spectrum_no is not None:
        meta["spectrum_number"] = spectrum_no

    ie = _energy_index(energy_column, header, ncols, src)
    energy = data[:, ie]
    unit = _pick_unit(unit, header[ie] if header else None, tagged, comments, phonopy, energy, meta, src)
    total, partials, errors = _pick_columns(data, ie, header, phonopy, symbols, meta, src, column, error_column)
    total, partials = _check_negatives(total, partials, errors, linenos, meta, src)

    order, es = _sorted_energies(energy, linenos, meta, src)
    factor = float(to_mev(1.0, unit))  # density per unit → per meV divides by meV-per-unit
    e_mev = es * factor
    total = total[order] / factor
    partials = {el: v[order] / factor for el, v in partials.items()}
    errors = None if errors is None else errors[order] / factor
    kind = tagged.get("kind", "total") if tagged else "total"
    edges = _tagged_edges(tagged, e_mev)
    if edges is not None:
        return Spectrum(edges, total, partials, kind=kind, meta=meta, errors=errors)
    return Spectrum.from_points(e_mev, total, partials, kind=kind, meta=meta, errors=errors)


def _mantid_header(header, comments, ncols, first_line, src):
    """(header, is_mantid): Mantid ``SaveAscii``'s ``X , Y , E [, DX]`` names become x, y, error [, dx]
    (so "E" is not taken for the energy). A comment with that header over data of another
    column count is an error."""
    if header and [h.lower() for h in header] in (["x", "y", "e"], ["x", "y", "e", "dx"]):
        return ["x", "y", "error"] + (["dx"] if len(header) == 4 else []), True
    for _, c in comments:
        names = [t.strip().lower() for t in c.lstrip("#").split(",")]
        if names in (["x", "y", "e"], ["x", "y", "e", "dx"]) and len(names) != ncols:
            raise DefectnetError(f"{ncols} columns; expected {len(names)} ({c.lstrip('#').strip()}) as the header says",
                                 source=src, line=first_line)
    return header, False


def _sorted_energies(energy, linenos, meta, src):
    """(the order that sorts ``energy``, the sorted energies); duplicates refused, sorting and rows at
    negative energies recorded in ``meta``."""
    order = np.argsort(energy, kind="stable")
    es = energy[order]
    dup = np.flatnonzero(np.diff(es) == 0)
    if dup.size:
        a, b = sorted((linenos[order[dup[0]]], linenos[order[dup[0] + 1]]))
        raise DefectnetError(f"duplicate energy {es[dup[0]]:g} (also on line {a}); expected distinct energies",
                             source=src, line=b)
    if np.any(order != np.arange(order.size)):
        meta["sorted_on_read"] = True
    if es[0] < 0:
        meta["negative_energy_rows"] = int(np.sum(es < 0))
    return order, es


def _pick_unit(unit, ename, tagged, comments, phonopy, energy, meta, src) -> str:
    """The energy unit, by the rules in :func:`read_spectrum`; records how in ``meta``.

    Every unit the file or the caller states is kept in ``meta["unit_sources"]`` ({source:
    unit}, first the one that won here), so that a reader who knows the host can tell when
    they disagree (:func:`defectnet.checks.choose_unit`)."""
    stated = {"--unit": canonical_unit(unit) if unit is not None else None,
              "header": _unit_from_name(ename) if ename else None,
              "tag": tagged.get("unit") if tagged else None,
              "comment": _unit_from_comments(comments), "phonopy": "THz" if phonopy else None}
    stated = {k: v for k, v in stated.items() if v}
    if stated:
        unit = next(iter(stated.values()))
        if next(iter(stated)) == "comment":
            meta["unit_from_comment"] = True
    else:
        unit, rule = _infer_unit(float(np.max(energy)))
        meta["unit_inferred"] = {"unit": unit, "rule": rule}
        warnings.warn(f"{src}: energy unit not stated; assumed {unit} ({rule}); pass unit= to override",
                      UnitGuessWarning, stacklevel=3)
    for u in {unit, *stated.values()}:
        if u not in ENERGY_UNIT_TO_MEV:
            raise DefectnetError(f"unknown energy unit {u!r}; expected one of {', '.join(ENERGY_UNIT_TO_MEV)}",
                                 source=src)
    meta["unit"], meta["unit_sources"] = unit, stated
    return unit


def _pick_columns(data, ie, header, phonopy, symbols, meta, src, column=None, error_column=None):
    """(total, {element: partial}, errors or None) columns of ``data`` (n, ncols), energy column ``ie`` excluded."""
    others = [j for j in range(data.shape[1]) if j != ie]
    partials: dict[str, np.ndarray] = {}
    if phonopy and len(others) > 1:  # projected_dos.dat: one column per atom
        if symbols is not None:
            if len(symbols) != len(others) or not all(_is_element(el) for el in symbols):
                raise DefectnetError(f"{len(others)} atom columns; expected as many element symbols, got "
                                     f"{list(symbols)}", source=src)
            for el in dict.fromkeys(symbols):
                partials[el] = data[:, [j for j, s in zip(others, symbols) if s == el]].sum(axis=1)
        else:
            meta["n_atom_columns"] = len(others)
        return data[:, others].sum(axis=1), partials, None
    names = [h.lower() for h in header] if header else [""] * data.shape[1]
    ierr = _error_index(error_column, names, header, others, src)
    others = [j for j in others if j != ierr]
    if not others:
        raise DefectnetError("no intensity column besides the energy and the errors", source=src)
    if column is not None:
        it = next((j for j in others if names[j] == column.lower()), None)
        if it is None:
            raise DefectnetError(f"no column named {column!r}; the columns are {header or 'unnamed'}", source=src)
    else:
        it = next((j for j in others if names[j] == "total"), None)
    if it is None:
        it = next((j for j in others if names[j] in _TOTAL_NAMES), others[0])
    meta["column"] = header[it] if header else it
    ignored = []
    for j in others:
        if j != it and header and _is_element(header[j]):
            partials[header[j]] = data[:, j]
        elif j != it:
            ignored.append(header[j] if header else j)
    if ignored:
        meta["ignored_columns"] = ignored
    if ierr is None:
        return data[:, it], partials, None
    meta["errors_column"] = header[ierr] if header else ierr
    return data[:, it], partials, data[:, ierr]


def _error_index(error_column, names, header, others, src):
    """Index of the errors column: ``error_column`` (name or index) if given, else the first named like one."""
    if error_column is None:
        return next((j for j in others if names[j] in _ERROR_NAMES), None)
    if isinstance(error_column, (int, np.integer)) and not isinstance(error_column, bool):
        j = int(error_column) % len(names) if -len(names) <= error_column < len(names) else None
    else:
        j = next((k for k in others if names[k] == str(error_column).lower()), None)
    if j is None or j not in others:
        raise DefectnetError(f"error_column {error_column!r} is not a column besides the energy; the columns are "
                             f"{header or f'{len(names)} unnamed'}", source=src)
    return j


def _check_negatives(total, partials, errors, linenos, meta, src):
    """Clip numerical-noise negatives (≥ -1e-6 × max of the total) to 0; keep the total's negatives within
    ERROR_SIGMAS σ of 0 when it has errors (counting noise, which the errors describe: clipping them would bias
    a fit weighted by them where the density is ~0); larger ones are an error, and so is a negative error."""
    if errors is not None and np.any(errors < 0):
        i = int(np.argmax(errors < 0))
        raise DefectnetError(f"negative error {errors[i]:g}; expected a 1σ uncertainty ≥ 0", source=src,
                             line=linenos[i])
    floor = -NEGATIVE_NOISE * float(np.max(np.abs(total)))
    n_clipped, out = 0, {}
    for name, col in {"total": total, **partials}.items():
        noisy = name == "total" and errors is not None
        allowed = np.minimum(floor, -ERROR_SIGMAS * errors) if noisy else floor
        neg = col < allowed
        if neg.any():
            i = int(np.argmax(neg))
            beyond = f" (more than {ERROR_SIGMAS:g}σ below 0)" if noisy else ""
            raise DefectnetError(f"negative intensity {col[i]:g}{beyond} in column {name!r}; expected a non-negative "
                                 "density", source=src, line=linenos[i])
        if noisy and np.any(col < 0):
            meta["negatives_within_errors"] = int(np.sum(col < 0))
        n_clipped += 0 if noisy else int(np.sum(col < 0))
        out[name] = col if noisy else np.maximum(col, 0.0)
    if n_clipped:
        meta["clipped_negatives"] = n_clipped
    return out.pop("total"), out


def _read_lines(p: Path, src: str) -> list[str]:
    if not p.exists():
        raise DefectnetError("file not found; expected a spectrum file (text, CSV or phonopy .dat)", source=src)
    if not p.is_file():
        raise DefectnetError("not a regular file; expected a spectrum file", source=src)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DefectnetError(f"cannot read file ({exc.strerror})", source=src) from None
    if b"\x00" in data:  # binary (an image, UTF-16 ...): no text file of numbers holds a NUL byte
        raise DefectnetError("not a text file; expected columns of numbers", source=src)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # a comment written in Latin-1 ("µ", "°"): the numbers read the same
        text = data.decode("latin-1")
    return text.splitlines()


def _split(lines, src):
    """Sort lines into comments [(lineno, text)], a header row (or None), numeric rows, their line
    numbers and the spectrum number (or None): a lone integer line before the data, as Mantid's
    ``SaveAscii`` writes; another such line after data rows starts a second spectrum, an error."""
    comments, header, rows, linenos = [], None, [], []
    spectrum_no, spectrum_line = None, None
    data = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    semicolons = any(";" in ln for ln in data)  # ';' between columns, then ',' is the decimal mark
    # ',' between columns when there are commas; a .csv with none is tab- or space-separated (spreadsheet exports)
    delim = ";" if semicolons else "," if any("," in ln for ln in data) else None
    if delim == ",":
        _refuse_decimal_commas(data, lines, src)
    for lineno, raw in enumerate(lines, start=1):
        s = raw.strip()
        if not s:
            continue
        if s.startswith("#"):
            comments.append((lineno, s))
            continue
        tokens = [t.strip().strip("\"'") for t in s.split(delim)] if delim else s.split()
        tokens = [t.replace(",", ".") for t in tokens] if semicolons else tokens
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            if not rows and header is None and not _any_number(tokens):
                header, header_line = tokens, (lineno, "# " + s)  # a header row comes before any data
                continue
            bad = next(t for t in tokens if not _is_number(t))
            raise DefectnetError(f"cannot parse {bad!r} as a number; expected {len(tokens)} numeric columns",
                                 source=src, line=lineno) from None
        if len(values) < 2:
            lone_integer = len(values) == 1 and float(values[0]).is_integer()
            if lone_integer and not rows and spectrum_no is None:
                spectrum_no, spectrum_line = int(values[0]), lineno
                continue
            if lone_integer and rows and spectrum_no is not None:
                raise DefectnetError(f"a second spectrum (number {int(values[0])}) starts here; expected one "
                                     "spectrum (save a single spectrum, e.g. SaveAscii's SpectrumList)",
                                     source=src, line=lineno)
            raise DefectnetError(f"{len(values)} column; expected at least 2 (energy, intensity)",
                                 source=src, line=spectrum_line if not rows and spectrum_line else lineno)
        if header and not rows and len(header) != len(values) and delim is None:
            # Whitespace header with spaces inside names ("E (meV)  DOS"): keep it as a comment only.
            comments.append(header_line)
            header = None
        expected = len(header) if (header and not rows) else (len(rows[0]) if rows else len(values))
        if len(values) != expected:
            raise DefectnetError(f"{len(values)} columns; expected {expected} like the rows before",
                                 source=src, line=lineno)
        rows.append(values)
        linenos.append(lineno)
    return comments, header, rows, linenos, spectrum_no


def _refuse_decimal_commas(data: list[str], lines: list[str], src: str) -> None:
    """Raise if comma-separated data use decimal commas too ("0,5,0,0041"): no '.' anywhere, and a
    field with a leading zero ("0041", a fraction's digits) or the first field repeating (every
    energy split at its comma starts "0", "0", ...)."""
    if not data or any("." in ln for ln in data):
        return
    fields = [[t.strip().strip("\"'") for t in ln.split(",")] for ln in data]
    numeric = [f for f in fields if _any_number(f)]
    leading_zero = any(re.fullmatch(r"0\d+", t) for f in numeric for t in f)
    firsts = [f[0] for f in numeric]
    if numeric and (leading_zero or len(set(firsts)) < len(firsts)):
        first = next(ln for ln, f in zip(data, fields) if _any_number(f))
        raise DefectnetError(f"decimal commas with commas between columns ({first.strip()!r}) cannot be split into "
                             "numbers; expected '.' as the decimal mark, or ';' or tabs between columns",
                             source=src, line=lines.index(first) + 1)


def _is_number(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def _any_number(tokens) -> bool:
    return any(_is_number(t) for t in tokens)


def _is_element(name: str) -> bool:
    try:
        check_element(name)
        return True
    except DefectnetError:
        return False


def _header_from_comments(comments, ncols):
    """Column names from the last comment line before the data with one name per column."""
    for _, c in reversed(comments):
        body = c.lstrip("#").strip()
        if body.startswith(META_TAG) or "=" in body or ":" in body:
            continue
        tokens = [t.strip() for t in body.split(",")] if "," in body else body.split()
        if len(tokens) == ncols and not _any_number(tokens):
            return tokens
    return None


def _energy_index(energy_column, header, ncols, src) -> int:
    if energy_column is None:
        if header:
            return next((j for j, h in enumerate(header) if _ENERGY_NAME.match(h)), 0)
        return 0
    if isinstance(energy_column, (int, np.integer)) and not isinstance(energy_column, bool):
        if not -ncols <= energy_column < ncols:
            raise DefectnetError(f"energy_column {energy_column} out of range for {ncols} columns", source=src)
        return int(energy_column) % ncols
    if header and energy_column in header:
        return header.index(energy_column)
    raise DefectnetError(f"no column named {energy_column!r}; columns are {header or 'unnamed'}", source=src)


def _tagged_meta(comments, src) -> dict:
    for lineno, c in comments:
        body = c.lstrip("#").strip()
        if body.startswith(META_TAG):
            try:
                d = json.loads(body[len(META_TAG):])
            except ValueError:
                raise DefectnetError(f"malformed {META_TAG} comment; expected JSON after the tag",
                                     source=src, line=lineno) from None
            if not isinstance(d, dict):
                raise DefectnetError(f"malformed {META_TAG} comment; expected a JSON object", source=src, line=lineno)
            return d
    return {}


def _tagged_edges(tagged, e_mev):
    """Exact edges from our own files, if they still match the energies in the file."""
    edges = tagged.get("edges_mev") if tagged else None
    if edges is None or len(edges) != e_mev.size + 1:
        return None
    edges = np.asarray(edges, dtype=float)
    if np.any(np.diff(edges) <= 0):
        return None
    mid = 0.5 * (edges[1:] + edges[:-1])
    return edges if np.allclose(mid, e_mev, rtol=0, atol=1e-6 * np.min(np.diff(edges))) else None


def write_spectrum(spectrum: Spectrum, path, *, unit=None, fmt=None, extra_columns=None) -> Path:
    """Write ``spectrum`` to ``path``; returns the path.

    ``extra_columns`` maps a name to another density on the same bins (per meV), e.g. the
    neutron-weighted ``gpdos``; it is written after the partials (not in phonopy files) and
    ignored by :func:`read_spectrum`, which records it in ``meta["ignored_columns"]``. A
    spectrum's errors are written as an ``error`` column after the partials (not in phonopy
    files) and read back as errors.

    ``fmt`` (default from the extension): ``"csv"`` (``.csv``: header
    ``energy_<unit>,total,<El>...``), ``"text"`` (``.dat``/``.txt``: the same columns,
    whitespace-separated, under a ``#`` header naming them and the unit) or ``"phonopy"``
    (a ``total_dos.dat``-style file: frequency in THz and the total only). Energies are bin
    centres in ``unit`` (default meV; THz for phonopy) and densities are per ``unit``. A
    ``# defectnet-spectrum {...}`` comment keeps the exact edges, kind and meta, so
    :func:`read_spectrum` restores the spectrum to float64 round-off.
    """
    p = Path(path)
    fmt = fmt or _WRITE_FORMATS.get(p.suffix.lower())
    if fmt not in ("csv", "text", "phonopy"):
        raise DefectnetError(f"cannot tell the format from {p.suffix!r}; use .csv, .dat or .txt, "
                             "or fmt='csv' | 'text' | 'phonopy'", source=str(path))
    unit = canonical_unit(unit or ("THz" if fmt == "phonopy" else "meV"))
    if fmt == "phonopy" and unit != "THz":
        raise DefectnetError(f"phonopy files are in THz, not {unit}", source=str(path))
    energy, density = spectrum.in_units(unit)
    factor = float(to_mev(1.0, unit))
    extra = {} if fmt == "phonopy" else dict(extra_columns or {})
    if fmt != "phonopy" and spectrum.errors is not None:
        if "error" in extra or "error" in spectrum.partials:
            raise DefectnetError("a column named 'error' would clash with the spectrum's errors", source=str(path))
        extra = {"error": spectrum.errors, **extra}
    names = ["total"] + ([] if fmt == "phonopy" else list(spectrum.partials)) + list(extra)
    for el in names[1:]:
        if not re.fullmatch(r"[A-Za-z0-9_()+-]+", el):
            raise DefectnetError(f"partial name {el!r} cannot be a column name", source=str(path))
    columns = np.column_stack([energy, density] + [np.asarray({**spectrum.partials, **extra}[el]) * factor for el in names[1:]])
    try:
        tag = json.dumps({"unit": unit, "kind": spectrum.kind, "columns": names,
                          "edges_mev": spectrum.edges_mev.tolist(), "meta": spectrum.meta}, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise DefectnetError(f"spectrum meta is not JSON-serialisable ({exc})", source=str(path)) from None
    header = [f"energy_{unit}"] + names
    out = [f"# {META_TAG} {tag}"]
    if fmt == "csv":
        out.append(",".join(header))
        out += [",".join(repr(float(x)) for x in row) for row in columns]
    elif fmt == "text":
        out.append(f"# energies in {unit}, densities per {unit}")
        out.append("# " + " ".join(header))
        out += [" ".join(f"{x:.17g}" for x in row) for row in columns]
    else:
        sigma = spectrum.meta.get("sigma_thz")
        out.insert(0, f"# Sigma = {sigma:f}" if isinstance(sigma, (int, float)) else "# Sigma = unknown")
        out += [f"{e:20.10f}{d:24.15e}" for e, d in columns]
    try:
        p.write_text("\n".join(out) + "\n")
    except OSError as exc:
        raise DefectnetError(f"cannot write file ({exc.strerror})", source=str(path)) from None
    return p


def read_structure(path_or_name):
    """Read a crystal structure (CIF, POSCAR/CONTCAR/.vasp, extxyz) with ASE; returns ``ase.Atoms``.

    Only existing paths are handled here (host names such as "GaAs" are resolved elsewhere).
    """
    p = Path(path_or_name)
    src = str(path_or_name)
    if not p.exists():
        raise DefectnetError("file not found; expected a CIF, POSCAR or extxyz file", source=src)
    if not p.is_file():
        raise DefectnetError("not a regular file; expected a CIF, POSCAR or extxyz file", source=src)
    import ase.io  # heavy; only when a structure is read

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ASE's CIF parser warns on harmless things
            atoms = ase.io.read(p)
    except Exception as exc:  # ASE raises many types; the user needs one clear message
        raise DefectnetError(f"cannot read a structure ({exception_reason(exc)}); expected a CIF, POSCAR or extxyz file",
                             source=src) from None
    if isinstance(atoms, list):
        atoms = atoms[-1] if atoms else None
    if atoms is None or len(atoms) == 0:
        raise DefectnetError("no atoms found; expected a CIF, POSCAR or extxyz file", source=src)
    return atoms
