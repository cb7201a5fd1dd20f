"""Spectrum files (round trips, formats, units, malformed input) and structure reading."""

import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID
from defectnet.io import read_spectrum, read_structure, write_spectrum
from defectnet.spectrum import Spectrum

THZ = 4.135667696  # meV per THz


@pytest.fixture(scope="module")
def spectrum():
    rng = np.random.default_rng(7)
    f = rng.uniform(0.0, 70.0, 600)
    ga = rng.uniform(0.0, 1.0, 600)
    return Spectrum.from_modes(f, DEFAULT_GRID, partial_weights={"Ga": ga, "As": 1 - ga}, resolution="tosca")


def gaussian_points(e, centre, sigma):
    return np.exp(-0.5 * ((e - centre) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def assert_same(a: Spectrum, b: Spectrum, rtol):
    assert_allclose(a.edges_mev, b.edges_mev, rtol=rtol)
    assert_allclose(a.values, b.values, rtol=rtol, atol=1e-300)
    assert sorted(a.partials) == sorted(b.partials)
    for el in a.partials:
        assert_allclose(a.partials[el], b.partials[el], rtol=rtol, atol=1e-300)
    assert a.kind == b.kind


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("unit", ["meV", "THz", "cm-1"])
def test_csv_round_trip(tmp_path, spectrum, unit):
    p = write_spectrum(spectrum, tmp_path / "s.csv", unit=unit)
    lines = p.read_text().splitlines()
    assert lines[1] == f"energy_{unit},total,Ga,As" or lines[1] == f"energy_{unit},total,As,Ga"
    back = read_spectrum(p)
    assert_same(back, spectrum, rtol=1e-10)
    assert back.meta["unit"] == unit and back.meta["n_imaginary"] == 0


@pytest.mark.parametrize("name", ["s.dat", "s.txt"])
def test_text_round_trip(tmp_path, spectrum, name):
    p = write_spectrum(spectrum, tmp_path / name)
    assert "# energies in meV" in p.read_text()
    assert_same(read_spectrum(p), spectrum, rtol=1e-12)


def test_phonopy_round_trip(tmp_path, spectrum):
    p = write_spectrum(spectrum, tmp_path / "total_dos.dat", fmt="phonopy")
    first = p.read_text().splitlines()[0]
    assert first.startswith("# Sigma")
    back = read_spectrum(p)
    assert back.meta["unit"] == "THz"
    assert back.partials == {}  # phonopy total_dos.dat holds the total only
    assert_allclose(back.edges_mev, spectrum.edges_mev, rtol=1e-12)
    assert_allclose(back.values, spectrum.values, rtol=1e-9, atol=1e-14)


def test_round_trip_of_unit_area_from_points(tmp_path):
    s = Spectrum.from_points(np.linspace(0, 50, 101), gaussian_points(np.linspace(0, 50, 101), 20, 2))
    back = read_spectrum(write_spectrum(s, tmp_path / "p.csv"))
    assert_same(back, s, rtol=1e-12)


def test_write_errors(tmp_path, spectrum):
    with pytest.raises(DefectnetError, match="s.json"):
        write_spectrum(spectrum, tmp_path / "s.json")
    with pytest.raises(DefectnetError):
        write_spectrum(spectrum, tmp_path / "x.dat", fmt="phonopy", unit="meV")
    bad = Spectrum(np.arange(6.0), np.ones(5), meta={"x": object()})
    with pytest.raises(DefectnetError):
        write_spectrum(bad, tmp_path / "x.csv")


# ------------------------------------------------------------------ foreign files


def test_phonopy_total_dos(tmp_path):
    # As phonopy writes it: '# Sigma = %f' then '%20.10f%20.10f' (THz, states per THz).
    f = np.linspace(-0.5, 16.0, 331)
    dos = 6.0 * gaussian_points(f, 10.0, 0.5)
    text = "# Sigma = 0.100000\n" + "".join(f"{a:20.10f}{b:20.10f}\n" for a, b in zip(f, dos))
    s = read_spectrum(write(tmp_path, "total_dos.dat", text))
    assert s.meta["format"] == "phonopy" and s.meta["unit"] == "THz"
    assert s.peak_mev() == pytest.approx(10.0 * THZ, abs=0.05 * THZ)
    assert s.area() == pytest.approx(6.0, rel=1e-4)  # area is unit-invariant


def test_phonopy_projected_dos(tmp_path):
    f = np.linspace(0.0, 12.0, 241)
    cols = [gaussian_points(f, 3.0, 0.4), gaussian_points(f, 8.0, 0.4), gaussian_points(f, 9.0, 0.4)]
    rows = "".join(f"{a:20.10f}" + "".join(f"{c[i]:20.10f}" for c in cols) + "\n" for i, a in enumerate(f))
    p = write(tmp_path, "projected_dos.dat", rows)  # no Sigma line: tetrahedron method
    s = read_spectrum(p)
    assert s.meta["unit"] == "THz" and s.meta["n_atom_columns"] == 3
    assert s.area() == pytest.approx(3.0, rel=1e-4)
    g = read_spectrum(p, symbols=["Ga", "As", "As"])
    assert_allclose(g.partials["Ga"] + g.partials["As"], g.values, rtol=1e-12)
    assert np.sum(g.partials["As"] * g.widths_mev) == pytest.approx(2.0, rel=1e-4)
    with pytest.raises(DefectnetError, match="projected_dos.dat"):
        read_spectrum(p, symbols=["Ga", "As"])


@pytest.mark.parametrize(
    "header, unit, scale",
    [("energy_meV,dos", "meV", 1.0), ("frequency_THz,total", "THz", THZ),
     ("omega_cm-1,intensity", "cm-1", 1 / 8.065543937), ("E (meV),g(E)", "meV", 1.0),
     ("Energy [cm^-1],S", "cm-1", 1 / 8.065543937)],
)
def test_csv_header_units(tmp_path, header, unit, scale):
    e = np.linspace(0.0, 20.0, 41)  # 10.0 is a sample
    text = header + "\n" + "".join(f"{a},{b}\n" for a, b in zip(e, gaussian_points(e, 10.0, 1.0)))
    s = read_spectrum(write(tmp_path, "x.csv", text))
    assert s.meta["unit"] == unit and "unit_inferred" not in s.meta
    assert s.peak_mev() == pytest.approx(10.0 * scale, rel=1e-6)


def test_csv_partials_and_ignored_columns(tmp_path):
    e = np.linspace(1.0, 60.0, 60)
    si, o = gaussian_points(e, 20.0, 2.0), gaussian_points(e, 40.0, 2.0)
    text = "E,weight,total,Si,O\n" + "".join(f"{a},0.1,{b + c},{b},{c}\n" for a, b, c in zip(e, si, o))
    with pytest.warns(UserWarning, match="assumed meV"):
        s = read_spectrum(write(tmp_path, "x.csv", text))
    assert set(s.partials) == {"Si", "O"}
    assert s.meta["ignored_columns"] == ["weight"] and s.errors is None
    assert_allclose(s.partials["Si"] + s.partials["O"], s.values, rtol=1e-12)


def test_sulfur_column_is_a_partial_not_the_total(tmp_path):
    e = np.linspace(0.0, 30.0, 31)
    text = "energy_meV,S,total\n" + "".join(f"{a},{0.5 * a},{a}\n" for a in e)
    s = read_spectrum(write(tmp_path, "x.csv", text))
    assert set(s.partials) == {"S"}
    assert_allclose(s.partials["S"], 0.5 * s.values)


@pytest.mark.parametrize("name", ["energy_meV", "E (meV)", "frequency_meV", "omega [meV]"])
def test_energy_column_found_by_name(tmp_path, name):
    e = np.linspace(0.0, 30.0, 61)
    text = f"total,{name}\n" + "".join(f"{b},{a}\n" for a, b in zip(e, gaussian_points(e, 12.0, 1.0)))
    s = read_spectrum(write(tmp_path, "x.csv", text))
    assert s.meta["unit"] == "meV" and s.peak_mev() == pytest.approx(12.0, abs=1e-9)


def test_energy_column_and_explicit_unit(tmp_path):
    e = np.linspace(1.0, 30.0, 30)
    text = "".join(f"{b} {a}\n" for a, b in zip(e, gaussian_points(e, 12.0, 1.0)))
    p = write(tmp_path, "swapped.txt", text)
    s = read_spectrum(p, energy_column=1, unit="meV")  # explicit unit wins over inference
    assert s.meta["unit"] == "meV" and s.peak_mev() == pytest.approx(12.0, abs=1e-9)
    with pytest.raises(DefectnetError, match="swapped.txt"):
        read_spectrum(p, energy_column="energy")
    with pytest.raises(DefectnetError):
        read_spectrum(p, energy_column=5)


@pytest.mark.parametrize("e_max, unit", [(30.0, "THz"), (300.0, "meV"), (3000.0, "cm-1")])
def test_unit_inferred_from_range(tmp_path, e_max, unit):
    e = np.linspace(0.0, e_max, 50)
    text = "# a spectrum\n" + "".join(f"{a} {b}\n" for a, b in zip(e, gaussian_points(e, e_max / 2, e_max / 10)))
    with pytest.warns(UserWarning, match=unit):
        s = read_spectrum(write(tmp_path, "x.dat", text))
    assert s.meta["unit_inferred"]["unit"] == unit and "rule" in s.meta["unit_inferred"]
    assert s.meta["unit"] == unit


def test_unit_from_comment_line(tmp_path):
    e = np.linspace(0.0, 10.0, 50)  # would be inferred as THz; the comment says meV
    text = "# Energy (meV)   DOS (states/meV)\n" + "".join(f"{a} {b}\n" for a, b in zip(e, gaussian_points(e, 5, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = read_spectrum(write(tmp_path, "x.dat", text))
    assert s.meta["unit"] == "meV"


def test_whitespace_header_row_with_spaces(tmp_path):
    e = np.linspace(0.0, 10.0, 21)
    text = "E (meV)   DOS\n" + "".join(f"{a}\t{b}\n" for a, b in zip(e, gaussian_points(e, 5, 1)))
    s = read_spectrum(write(tmp_path, "x.txt", text))
    assert s.meta["unit"] == "meV" and s.peak_mev() == pytest.approx(5.0)


def test_quoted_csv(tmp_path):
    e = np.linspace(0.0, 10.0, 21)
    text = '"energy_meV","total"\n' + "".join(f'"{a}","{b}"\n' for a, b in zip(e, gaussian_points(e, 5, 1)))
    s = read_spectrum(write(tmp_path, "x.csv", text))
    assert s.meta["unit"] == "meV" and s.peak_mev() == pytest.approx(5.0)


def test_unsorted_is_sorted_and_tiny_negatives_clipped(tmp_path):
    e = np.linspace(1.0, 20.0, 20)
    v = gaussian_points(e, 10.0, 2.0)
    v[0] = -1e-9  # numerical noise
    order = np.random.default_rng(0).permutation(20)
    text = "energy_meV total\n" + "".join(f"{e[i]} {v[i]}\n" for i in order)
    s = read_spectrum(write(tmp_path, "x.txt", text))
    assert s.meta["sorted_on_read"] is True and s.meta["clipped_negatives"] == 1
    assert np.all(s.values >= 0) and np.all(np.diff(s.centers_mev) > 0)
    assert s.values[0] == 0.0


# ------------------------------------------------------------------ malformed files


def five_rows(first="1 1", n=5):
    return "\n".join([first] + [f"{i + 2} 1" for i in range(n - 1)]) + "\n"


@pytest.mark.parametrize(
    "name, text, line, pattern",
    [
        ("bad_number.dat", "# header\n1 2\n2 3\n3 x4\n4 5\n5 6\n", 4, "x4"),
        ("one_col.dat", "1\n2\n3\n4\n5\n", 1, "at least 2"),
        ("ragged.dat", "1 2\n2 3\n3 4 5\n4 5\n5 6\n", 3, "columns"),
        ("nan.dat", "1 2\n2 nan\n3 4\n4 5\n5 6\n", 2, "NaN"),
        ("inf.csv", "e,total\n1,2\n2,3\n3,inf\n4,5\n5,6\n", 4, "NaN or inf"),
        ("negative.dat", "1 2\n2 3\n3 -0.5\n4 5\n5 6\n", 3, "negative"),
        ("duplicate.dat", "1 2\n2 3\n3 4\n2 5\n5 6\n", 4, "duplicate"),
        ("trailing_comma.csv", "e,total\n1,2\n2,3,\n3,4\n4,5\n5,6\n", 3, "number"),
    ],
)
def test_malformed_with_line(tmp_path, name, text, line, pattern):
    p = write(tmp_path, name, text)
    with pytest.raises(DefectnetError) as err:
        read_spectrum(p, unit="meV")
    msg = str(err.value)
    assert name in msg and f":{line}:" in msg and re.search(pattern, msg), msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "name, text, pattern",
    [
        ("empty.dat", "", "empty"),
        ("comments.dat", "# only\n# comments\n\n", "empty"),
        ("short.dat", "1 2\n2 3\n3 4\n", "at least 5"),
        ("header_only.csv", "energy_meV,total\n", "empty"),
    ],
)
def test_malformed_without_line(tmp_path, name, text, pattern):
    with pytest.raises(DefectnetError) as err:
        read_spectrum(write(tmp_path, name, text), unit="meV")
    assert name in str(err.value) and re.search(pattern, str(err.value))


def test_missing_directory_and_binary(tmp_path):
    with pytest.raises(DefectnetError, match="nope.dat.*not found"):
        read_spectrum(tmp_path / "nope.dat")
    with pytest.raises(DefectnetError, match="not a regular file"):
        read_spectrum(tmp_path)
    b = tmp_path / "blob.dat"
    b.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DefectnetError, match="blob.dat"):
        read_spectrum(b)


# ------------------------------------------------------------------ structures


@pytest.mark.parametrize("name, fmt", [("POSCAR", "vasp"), ("si.cif", "cif"), ("si.extxyz", "extxyz")])
def test_read_structure_formats(tmp_path, name, fmt):
    from ase.build import bulk
    import ase.io

    si = bulk("Si", "diamond", a=5.43, cubic=True)
    ase.io.write(tmp_path / name, si, format=fmt)
    atoms = read_structure(tmp_path / name)
    assert atoms.get_chemical_symbols() == ["Si"] * 8
    assert_allclose(atoms.cell.lengths(), [5.43] * 3, rtol=1e-6)


def test_read_structure_errors(tmp_path):
    with pytest.raises(DefectnetError, match="GaAs.cif.*not found"):
        read_structure(tmp_path / "GaAs.cif")
    junk = write(tmp_path, "junk.cif", "this is not a crystal\n")
    with pytest.raises(DefectnetError) as err:
        read_structure(junk)
    assert "junk.cif" in str(err.value) and "CIF, POSCAR or extxyz" in str(err.value)
    assert "\n" not in str(err.value)
