"""Hostile files: where the answer is written, the model, basis, truth and host files, and the spectrum files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from defectnet.model.checkpoint import pretrained_path

from .common import (EX, PNG, Answer, Case, Error, Run, argv, assert_noted, doped, flags, no_signature,
                     pristine_and_doped, readme_answer, run_case, run_predict, write_bytes, write_csv, write_text)


def _json_to(target):
    def build(tmp, g):
        path = target(tmp)
        return [*argv(tmp)[:-2], "--json", str(path)], str(path)
    return build


def _plot_to(target):
    def build(tmp, g):
        path = target(tmp)
        return [*argv(tmp), "--plot", str(path)], str(path)
    return build


def _a_file(tmp):
    (tmp / "a_file").write_text("x")
    return tmp / "a_file"


def _option(name, make):
    """``--name FILE`` with the file ``make(tmp)`` writes; errors must name it."""
    def build(tmp, g):
        path = make(tmp)
        return argv(tmp, extra=(name, str(path))), str(path)
    return build


def _torch_zip_with_code(tmp):
    import torch

    torch.save({"format": "defectnet-model", "payload": Run(0, "", "", [], None)}, tmp / "evil.pt")
    return tmp / "evil.pt"


def _regridded_basis(tmp, g):
    """``--method conditioned`` with the example basis said to be on a linear grid (the model reads the asinh one)."""
    from dataclasses import replace

    from defectnet.grid import EnergyGrid
    from defectnet.unmix import SignatureBasis

    b = SignatureBasis.load(EX / "basis.npz")
    path = replace(b, grid=EnergyGrid(kind="linear", e_min_mev=0.0, e_max_mev=500.0, n_bins=640)).save(tmp / "grid.npz")
    return argv(tmp, extra=("--basis", str(path), "--method", "conditioned")), str(path)


OUTPUTS = [
    Case("json-to-existing-directory", _json_to(lambda t: t), Error("cannot write the prediction as JSON")),
    Case("json-under-a-file", _json_to(lambda t: _a_file(t) / "p.json"), Error("cannot write the prediction")),
    Case("json-to-full-device", _json_to(lambda t: Path("/dev/full")), Error("No space left")),
    Case("json-under-proc", _json_to(lambda t: Path("/proc/defectnet-no/p.json")), Error("cannot write")),
    Case("plot-under-a-file", _plot_to(lambda t: _a_file(t) / "p.png"), Error("cannot write the plot")),
    Case("plot-to-existing-directory", _plot_to(lambda t: t), Error("cannot write the plot")),
    Case("plot-to-full-device", _plot_to(lambda t: Path("/dev/full")), Error("cannot write the plot")),
    Case("plot-unknown-format", _plot_to(lambda t: t / "p.xyz"), Error("not supported")),
    Case("json-and-plot-written", _plot_to(lambda t: t / "deep" / "er" / "p.png"), Answer(readme_answer)),
]

OTHER_FILES = [
    Case("truth-is-a-directory", _option("--truth", lambda t: t), Error("cannot read the true concentrations")),
    Case("truth-not-json", _option("--truth", lambda t: Path(write_text(t / "t.json", "Si: 2 %"))),
         Error("expected a JSON file")),
    Case("truth-a-list", _option("--truth", lambda t: Path(write_text(t / "t.json", "[0.02]"))),
         Error("expected {element: atomic fraction}")),
    Case("truth-a-boolean", _option("--truth", lambda t: Path(write_text(t / "t.json", '{"Si": true}'))),
         Error("expected {element: atomic fraction}")),
    Case("model-is-a-png", _option("--model", lambda t: Path(write_bytes(t / "m.pt", PNG))), Error("not a readable torch")),
    Case("model-missing", _option("--model", lambda t: t / "nothing.pt"), Error("does not exist")),
    Case("model-zip-not-torch", _option("--model", lambda t: _zip(t / "m.pt")), Error("refusing to load")),
    Case("model-pickled-code", _option("--model", _torch_zip_with_code), Error("refusing to load")),
    Case("basis-corrupt-zip", _option("--basis", lambda t: Path(write_bytes(t / "b.npz", b"PK\x03\x04" + bytes(80)))),
         Error("not a signature basis file (expected .npz written by defectnet basis)")),
    Case("basis-npz-without-header", _option("--basis", lambda t: _npz(t / "b.npz", a=np.zeros(3))),
         Error("(expected .npz written by defectnet basis; KeyError")),
    Case("basis-header-not-json", _option("--basis", lambda t: _npz(t / "b.npz", header=np.array("{nope"))),
         Error("(expected .npz written by defectnet basis; JSONDecodeError")),
    Case("basis-missing", _option("--basis", lambda t: t / "none.npz"),
         Error("file not found; expected .npz written by defectnet basis")),
    Case("basis-is-a-directory", _option("--basis", lambda t: t), Error("is a directory; expected .npz written by")),
    Case("basis-on-another-grid-for-the-conditioned-network", _regridded_basis, Error("is on energy grid linear-")),
    Case("conditioned-model-without-basis", flags("--model", str(pretrained_path("conditioned"))),
         Error("is a conditioned model: it reads each candidate through its signature")),
    Case("host-missing-cif", lambda t, g: (argv(t, host=str(t / "none.cif")), str(t / "none.cif")), Error("no such file")),
    Case("host-is-a-directory", lambda t, g: (argv(t, host=str(t)), str(t)), Error("directory")),
    Case("host-unknown-name", lambda t, g: (argv(t, host="Unobtainium"), "Unobtainium"), Error("Unobtainium")),
    Case("host-empty-cif", lambda t, g: (argv(t, host=write_text(t / "e.cif", "")), str(t / "e.cif")),
         Error("expected a CIF")),
    Case("host-binary-cif", lambda t, g: (argv(t, host=write_bytes(t / "b.cif", PNG)), str(t / "b.cif")),
         Error("expected a CIF")),
]


def _zip(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "not a model")
    return path


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _headerless(tmp, g, name, factor=1.0, e_max=None):
    keep = g.e <= (e_max or np.inf)
    lines = [f"{float(a) * factor!r} {float(b) / factor!r}" for a, b in zip(g.e[keep], (g.p if name == "p" else g.d)[keep])]
    return write_text(tmp / f"{name}.dat", "\n".join(lines) + "\n")


SPECTRUM_FILES = [
    Case("doped-missing", doped(lambda t, g: t / "none.csv"), Error("file not found")),
    Case("doped-is-a-directory", doped(lambda t, g: t), Error("not a regular file")),
    Case("doped-empty", doped(lambda t, g: write_text(t / "d.csv", "")), Error("empty file")),
    Case("doped-header-only", doped(lambda t, g: write_text(t / "d.csv", "energy_meV,gpdos\n")), Error("empty file")),
    Case("doped-is-a-png", doped(lambda t, g: write_bytes(t / "d.csv", PNG)), Error("not a text file")),
    Case("doped-utf16", doped(lambda t, g: write_text(t / "d.csv", "energy_meV,gpdos\n1,2\n", "utf-16")),
         Error("not a text file")),
    Case("doped-one-column", doped(lambda t, g: write_text(t / "d.dat", "\n".join(map(str, g.e)))),
         Error("expected at least 2")),
    Case("doped-ragged", doped(lambda t, g: write_text(t / "d.dat", "1 2\n2 3\n3 4 5\n4 1\n5 1\n6 1\n")),
         Error(":3: 3 columns")),
    Case("doped-nan", doped(lambda t, g: write_text(t / "d.dat", "1 2\n2 nan\n3 4\n4 1\n5 1\n6 1\n")), Error(":2: NaN")),
    Case("doped-negative", doped(lambda t, g: write_csv(t / "d.csv", g.e, g.d - 0.01)), Error("negative intensity")),
    Case("doped-duplicate-energy", doped(lambda t, g: write_csv(t / "d.csv", np.r_[g.e[:3], g.e[2:]], np.r_[g.d[:3], g.d[2:]])),
         Error("duplicate energy")),
    Case("doped-four-rows", doped(lambda t, g: write_csv(t / "d.csv", g.e[:4], g.d[:4])), Error("at least 5 points")),
    Case("doped-all-zero", doped(lambda t, g: write_csv(t / "d.csv", g.e, 0 * g.d)), Error("zero everywhere")),
    Case("doped-words", doped(lambda t, g: write_text(t / "d.csv", "energy_meV,gpdos\n1,2\n2,lots\n3,1\n4,1\n5,1\n")),
         Error(":3: cannot parse 'lots'")),
    Case("doped-stops-inside-the-bands", doped(lambda t, g: write_csv(t / "d.csv", g.e[g.e < 10], g.d[g.e < 10])),
         Error("cover the host's whole phonon spectrum")),
    Case("doped-headerless-mev", pristine_and_doped(lambda t, g: (_headerless(t, g, "p"), _headerless(t, g, "d"))),
         Answer(lambda r, out: readme_answer(r, out) or assert_noted(r, "assumed meV"))),
    Case("doped-headerless-thz", pristine_and_doped(
        lambda t, g: (_headerless(t, g, "p", 1 / 4.135667696, 120), _headerless(t, g, "d", 1 / 4.135667696, 120))),
         Answer(lambda r, out: readme_answer(r, out) or assert_noted(r, "assumed THz"))),
]


def _decimal_commas(g, v, sep=",", header=None):
    rows = [f"{a:.4f}{sep}{b:.6f}".replace(".", ",") for a, b in zip(g.e, v)]
    return "\n".join(([header] if header else []) + rows) + "\n"


def _latin1(tmp, g, name, comment):
    v = g.p if name == "p" else g.d
    body = "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in zip(g.e, v))
    return write_text(tmp / f"{name}.csv", f"# {comment}\nenergy_meV,gpdos\n{body}\n", "latin-1")


def _integer_csv(tmp, g, name):
    """Integer energies (meV) and counts, comma-separated: no decimal mark at all, and none needed."""
    e = np.arange(0, 121)
    counts = np.round(1e6 * np.interp(e, g.e, g.p)).astype(int)
    return write_text(tmp / f"{name}.csv", "".join(f"{a},{c}\n" for a, c in zip(e, counts)))


MALFORMED_CIF = "data_x\n_cell_length_a 5.65\nloop_\n_atom_site_label\n"
CIF_WITHOUT_ATOMS = ("data_x\n_cell_length_a 5.6\n_cell_length_b 5.6\n_cell_length_c 5.6\n_cell_angle_alpha 90\n"
                     "_cell_angle_beta 90\n_cell_angle_gamma 90\nloop_\n_atom_site_label\n_atom_site_fract_x\nGa1 0.0\n")


def _host_file(name, text):
    def build(tmp, g):
        return argv(tmp, host=write_text(tmp / name, text)), str(tmp / name)
    return build


WEAK_MESSAGE_CASES = [
    Case("decimal-commas-comma-separated", doped(lambda t, g: write_text(t / "d.csv", _decimal_commas(g, g.d)))
         , Error(":1: decimal commas with commas between columns ('0,0721,0,004099')")),
    Case("decimal-commas-under-a-header", doped(lambda t, g: write_text(
        t / "d.csv", _decimal_commas(g, g.d, header="energy_meV,gpdos"))), Error(":2: decimal commas")),
    Case("decimal-commas-integer-parts-repeat", doped(lambda t, g: write_text(
        t / "d.csv", "".join(f"{10 + k // 2},{5 * (k % 2)},{k}\n" for k in range(40)))), Error("decimal commas")),
    Case("decimal-commas-semicolon-separated", pristine_and_doped(lambda t, g: (
        write_text(t / "p.csv", _decimal_commas(g, g.p, ";", "energy_meV;gpdos")),
        write_text(t / "d.csv", _decimal_commas(g, g.d, ";", "energy_meV;gpdos")))), Answer(readme_answer)),
    Case("integers-with-commas-are-not-decimal-commas", pristine_and_doped(lambda t, g: (
        _integer_csv(t, g, "p"), _integer_csv(t, g, "d"))), Answer(no_signature)),
    Case("csv-files-separated-by-tabs", pristine_and_doped(lambda t, g: (
        write_text(t / "p.csv", "".join(f"{a!r}\t{b!r}\n" for a, b in zip(map(float, g.e), map(float, g.p)))),
        write_text(t / "d.csv", "".join(f"{a!r}\t{b!r}\n" for a, b in zip(map(float, g.e), map(float, g.d)))))),
         Answer(readme_answer)),
    Case("latin1-micro-sign-in-a-comment", pristine_and_doped(lambda t, g: (
        _latin1(t, g, "p", "sample mass 250 µg"), _latin1(t, g, "d", "sample mass 250 µg"))), Answer(readme_answer)),
    Case("latin1-degree-sign-in-a-comment", doped(lambda t, g: _latin1(t, g, "d", "T = 5 °K")), Answer(readme_answer)),
    Case("basis-is-a-png", _option("--basis", lambda t: Path(write_bytes(t / "b.npz", PNG))),
         Error("not a signature basis file (expected .npz written by defectnet basis)")),
    Case("basis-is-text", _option("--basis", lambda t: Path(write_text(t / "b.npz", "Si Zn Be C\n"))),
         Error("not a signature basis file (expected .npz written by defectnet basis)")),
    Case("host-malformed-cif", _host_file("bad.cif", MALFORMED_CIF),
         Error("could not read a crystal structure (malformed or incomplete")),
    Case("host-cif-loop-without-atoms", _host_file("bad.cif", CIF_WITHOUT_ATOMS), Error("malformed or incomplete")),
    Case("host-truncated-poscar", _host_file("POSCAR", "GaAs\n1.0\n5.6 0 0\n0 5.6 0\n"),
         Error("could not read a crystal structure")),
]

CASES = OUTPUTS + OTHER_FILES + SPECTRUM_FILES + WEAK_MESSAGE_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case, tmp_path, gaas):
    run_case(case, tmp_path, gaas)


def test_an_unwritable_cache_is_a_note_not_a_traceback(tmp_path, monkeypatch):
    """The computed pristine spectrum cannot be cached: the answer comes anyway, and a note says why."""
    from ase.build import bulk
    from ase.io import write

    monkeypatch.setenv("DEFECTNET_CACHE", str(_a_file(tmp_path)))  # a file where the cache directory should be
    write(tmp_path / "Cu.vasp", bulk("Cu", "fcc", a=3.6), format="vasp")
    e = np.arange(0.0, 60.0, 0.25)
    doped = write_csv(tmp_path / "cu.csv", e, np.where(e < 32, (e / 32) ** 2, 0.0))
    run = run_predict(["--host", str(tmp_path / "Cu.vasp"), "--doped", doped, "--candidates", "Ni,Zn", "--potential", "emt",
                       "--json", str(tmp_path / "out.json")], tmp_path / "out.json")
    assert "Traceback" not in run.err and not run.raw_warnings, run.err
    assert run.code == 0, run.err
    assert any("was not cached" in n and "DEFECTNET_CACHE" in n for n in run.result["notes"]), run.result["notes"]
