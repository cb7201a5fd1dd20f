"""ISIS/VISION-style ASCII spectra with an error column (Mantid SaveAscii and headed columns)."""

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose

from defectnet.errors import DefectnetError
from defectnet.io import read_spectrum, write_spectrum
from defectnet.spectrum import Spectrum

CM1_PER_MEV = 8.065543937  # cm⁻¹ per meV (ARCHITECTURE.md rounds it to 8.0655439)


def measured(n=60, e_max=400.0, seed=5):
    """A noisy INS-like spectrum: (x, S, error) as columns of a file, before any unit conversion."""
    rng = np.random.default_rng(seed)
    x = np.linspace(e_max / n, e_max, n)
    s = np.exp(-0.5 * ((x - 0.4 * e_max) / (0.05 * e_max)) ** 2) + 0.1
    err = 0.02 + 0.05 * rng.uniform(size=n) * s
    return x, s + err * rng.standard_normal(n) * 0.3, err


def expected_edges(e_mev):
    return np.concatenate([e_mev[:1], 0.5 * (e_mev[1:] + e_mev[:-1]), e_mev[-1:]])


def mantid_ascii(x, s, err, *, comment="", spectrum_number=True, dx=False):
    """What Mantid's SaveAscii (v2) writes for a one-spectrum workspace: header, spectrum number, CSV rows."""
    lines = ([comment] if comment else []) + ["# X , Y , E" + (" , DX" if dx else "")]
    lines += ["1"] if spectrum_number else []
    lines += [f"{a:.17g},{b:.17g},{c:.17g}" + (",0.5" if dx else "") for a, b, c in zip(x, s, err)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("unit_comment, unit, per_mev", [
    ("# Unit: DeltaE_inWavenumber", "cm-1", CM1_PER_MEV),
    ("# Energy transfer in meV", "meV", 1.0),
])
def test_mantid_saveascii_round_trip(tmp_path, unit_comment, unit, per_mev):
    x, s, err = measured(e_max=3000.0 if unit == "cm-1" else 400.0)
    p = tmp_path / "tosca_sample.dat"
    p.write_text(mantid_ascii(x, s, err, comment=unit_comment))
    spec = read_spectrum(p)
    assert spec.meta["unit"] == unit and spec.meta["format"] == "mantid-ascii"
    assert spec.meta["spectrum_number"] == 1 and spec.meta["errors_column"] == "error"
    assert_allclose(spec.edges_mev, expected_edges(x / per_mev), rtol=1e-12)
    assert_allclose(spec.values, s * per_mev, rtol=1e-12)  # density per cm⁻¹ → per meV
    assert_allclose(spec.errors, err * per_mev, rtol=1e-12)


def test_mantid_dx_column_is_ignored(tmp_path):
    x, s, err = measured()
    p = tmp_path / "dx.csv"
    p.write_text(mantid_ascii(x, s, err, comment="# DeltaE", spectrum_number=False, dx=True))
    spec = read_spectrum(p)
    assert_allclose(spec.errors, err, rtol=1e-12) and spec.meta["ignored_columns"] == ["dx"]


def test_vision_style_headed_columns_in_cm1(tmp_path):
    x, s, err = measured(e_max=3500.0)
    p = tmp_path / "vision.txt"
    p.write_text("# VISION, sample X, 5 K\n# Energy(cm-1)  Intensity  Error\n"
                 + "".join(f"{a:.10g}  {b:.10g}  {c:.10g}\n" for a, b, c in zip(x, s, err)))
    spec = read_spectrum(p)
    assert spec.meta["unit"] == "cm-1" and spec.meta["column"] == "Intensity"
    assert_allclose(spec.centers_mev[1:-1], x[1:-1] / CM1_PER_MEV, rtol=1e-9)
    assert_allclose(spec.errors, err * CM1_PER_MEV, rtol=1e-9)


def test_unnamed_third_column_needs_error_column(tmp_path):
    x, s, err = measured()
    p = tmp_path / "plain.dat"
    p.write_text("".join(f"{a} {b} {c}\n" for a, b, c in zip(x, s, err)))
    assert read_spectrum(p, unit="meV").errors is None
    assert_allclose(read_spectrum(p, unit="meV", error_column=2).errors, err, rtol=1e-12)
    with pytest.raises(DefectnetError, match="error_column 0"):
        read_spectrum(p, unit="meV", error_column=0)  # the energy column


def test_own_files_round_trip_errors(tmp_path):
    rng = np.random.default_rng(2)
    edges = np.concatenate([[1.0], 1.0 + np.cumsum(rng.uniform(0.2, 1.0, 30))])
    spec = Spectrum(edges, rng.uniform(0.1, 1.0, 30), errors=rng.uniform(0.0, 0.1, 30), kind="gpdos")
    for name, unit in [("s.csv", "cm-1"), ("s.dat", "THz")]:
        back = read_spectrum(write_spectrum(spec, tmp_path / name, unit=unit))
        assert_allclose(back.edges_mev, spec.edges_mev, rtol=1e-12)
        assert_allclose(back.values, spec.values, rtol=1e-12)
        assert_allclose(back.errors, spec.errors, rtol=1e-12, atol=1e-300)


def test_negatives_within_errors_are_kept_beyond_are_refused(tmp_path):
    """Within 5σ of 0 a negative is counting noise that the errors describe: kept (clipped, it would bias the
    fit they weight where the density is ~0)."""
    x, s, err = measured()
    s[3], s[7] = -4.0 * err[3], -6.0 * err[7]
    p = tmp_path / "neg.csv"
    p.write_text(mantid_ascii(x, s, err, comment="# DeltaE"))
    with pytest.raises(DefectnetError, match=r"neg\.csv:11: negative intensity .*more than 5σ below 0"):
        read_spectrum(p)  # comment, header, spectrum number on lines 1-3: row index 7 is line 11
    s[7] = 0.5
    p.write_text(mantid_ascii(x, s, err, comment="# DeltaE"))
    spec = read_spectrum(p)
    assert spec.values[3] == pytest.approx(-4.0 * err[3]) and spec.meta["negatives_within_errors"] == 1
    assert spec.errors[3] == err[3] and "clipped_negatives" not in spec.meta


def rows(n=6, bad_row=None, bad=""):
    return [bad if i == bad_row else f"{i + 1}.0,{0.5 + i},0.1" for i in range(n)]


@pytest.mark.parametrize("name, text, line, pattern", [
    ("negative_error.csv", "# X , Y , E\n1\n" + "\n".join(rows(bad_row=2, bad="3.0,1.0,-0.2")), 5,
     "negative error -0.2"),
    ("nan_error.csv", "# X , Y , E\n1\n" + "\n".join(rows(bad_row=4, bad="5.0,1.0,nan")), 7, "NaN"),
    ("two_columns.csv", "# X , Y , E\n1\n" + "\n".join(f"{i + 1}.0,{i}" for i in range(6)), 3,
     r"2 columns; expected 3 \(X , Y , E\)"),
    ("ragged.csv", "# X , Y , E\n1\n" + "\n".join(rows(bad_row=3, bad="4.0,1.0")), 6, "2 columns; expected 3"),
    ("two_spectra.csv", "# X , Y , E\n1\n" + "\n".join(rows()) + "\n2\n" + "\n".join(rows()), 9,
     "second spectrum"),
])
def test_bad_files_one_line_error_with_file_and_line(tmp_path, name, text, line, pattern):
    p = tmp_path / name
    p.write_text(text + "\n")
    with pytest.raises(DefectnetError) as err:
        read_spectrum(p, unit="meV")
    msg = str(err.value)
    assert msg.startswith(f"{p}:{line}: ") and re.search(pattern, msg) and "\n" not in msg, msg
