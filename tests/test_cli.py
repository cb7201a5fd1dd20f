import json
import subprocess
import sys

import pytest
from ase.build import bulk
from ase.io import write

from defectnet.cli import main
from defectnet.io import read_spectrum


@pytest.fixture(scope="module")
def cu_poscar(tmp_path_factory):
    path = tmp_path_factory.mktemp("hosts") / "Cu.vasp"
    write(path, bulk("Cu", "fcc", a=3.6), format="vasp")
    return path


def test_simulate_writes_everything_a_user_needs(cu_poscar, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "simulate", str(cu_poscar), "--dopants", "Au:0.03,Ni:0.03", "--tier", "mass",
            "--potential", "emt", "--supercell-atoms", "32", "--out", str(out), "--quiet", "--seed", "3",
        ]
    )
    assert code == 0
    for name in ("pristine.csv", "doped.csv", "meta.json", "config.json", "doped.cif", "host_relaxed.cif", "spectra.png"):
        assert (out / name).exists(), name
    meta = json.loads((out / "meta.json").read_text())
    assert meta["supercell_atoms"] == 32
    assert meta["dopants"]["counts"] == {"Au@Cu": 1, "Ni@Cu": 1}  # round(0.03 * 32) = 1
    assert meta["concentrations"]["Au"] == pytest.approx(1 / 32)
    assert meta["potential"]["name"] == "emt" and meta["tier"] == "mass"
    assert meta["seed"] == 3 and "phonopy" in meta["versions"]
    doped = read_spectrum(out / "doped.csv")
    assert doped.area() == pytest.approx(1.0, abs=1e-6)
    assert set(doped.partials) == {"Au", "Cu", "Ni"}
    header = (out / "doped.csv").read_text().splitlines()[1]
    assert header.split(",")[-1] == "gpdos"
    assert "wrote" in capsys.readouterr().out


def test_output_into_a_closed_pipe_is_no_traceback():
    # `defectnet hosts list | head -1`: the reader goes away while the library's ~100 kB table is written
    proc = subprocess.Popen([sys.executable, "-m", "defectnet.cli", "hosts", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_bad_input_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "broken.cif"
    bad.write_text("this is not a crystal\n")
    for args, fragment in [
        (["simulate", str(bad), "--dopants", "Ge:0.01", "--out", str(tmp_path / "x")], "broken.cif"),
        (["simulate", str(bad), "--dopants", "Ge=0.01", "--out", str(tmp_path / "x")], "bad dopant spec"),
        (["simulate", str(bad), "--dopants", "Ge:0.01", "--tier", "fast", "--out", str(tmp_path / "x")], "unknown tier"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "defectnet.cli", *args], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr
        assert fragment in lines[0]
