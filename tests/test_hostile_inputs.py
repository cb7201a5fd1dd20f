"""Hostile inputs to ``defectnet predict``: each ends in a one-line error or a correct answer, never a traceback.

Every input is generated here, in ``tmp_path``, from the bundled GaAs example (2.0 % Si and
0.67 % Zn on Ga; the shipped model finds Si and not Be or C, see tests/test_predict.py). Each
case runs the CLI in-process and asserts the exit code, that no traceback and no raw Python
warning reached the user, and either a stable part of the one-line error (and the file it
names) or the answer.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from defectnet.cli import run_captured
from defectnet.io import read_spectrum
from defectnet.model.checkpoint import pretrained_path

EX = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
CANDIDATES = "Si,Zn,Be,C"


@dataclass
class Run:
    code: int
    out: str
    err: str
    raw_warnings: list
    result: dict | None  # the --json output, when written


def run_predict(args: list[str], json_path: Path | None) -> Run:
    """``defectnet predict ARGS`` in-process; an exception escaping ``main`` is recorded as a traceback on stderr."""
    code, out, err, raw = run_captured(["predict", *args])
    result = None
    if code == 0 and json_path is not None and json_path.is_file():
        result = json.loads(json_path.read_text())
    return Run(code, out, err, raw, result)


@dataclass
class Spectra:
    e: np.ndarray  # bin centres, meV
    p: np.ndarray  # pristine GPDoS, per meV
    d: np.ndarray  # doped GPDoS, per meV


@pytest.fixture(scope="module", autouse=True)
def host_spectra():
    """The simulated pristine spectra of the hosts used here, computed once for the module (the CLI would
    show the MLIP's progress bars on stderr the first time)."""
    from defectnet.predict import host_reference

    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
        warnings.simplefilter("ignore")
        mp.setenv("DEFECTNET_CACHE", "off")  # as in every test (conftest): kept for this process only
        return {h: host_reference(h) for h in ("GaAs", "Si", "CdTe")}


@pytest.fixture(scope="module")
def gaas():
    p = read_spectrum(EX / "pristine.csv", column="gpdos")
    d = read_spectrum(EX / "doped.csv", column="gpdos")
    return Spectra(p.centers_mev, p.values, d.values)


def write_csv(path: Path, e, v, header="energy_meV,gpdos") -> str:
    lines = ([header] if header else []) + [f"{a!r},{b!r}" for a, b in zip(map(float, e), map(float, v))]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def write_text(path: Path, text: str, encoding="utf-8") -> str:
    path.write_text(text, encoding=encoding)
    return str(path)


def write_bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde" + bytes(64)


# ----------------------------------------------------------------------------- expectations
@dataclass
class Error:
    """Exit 2 with one line on stderr holding ``text`` (and ``names``, e.g. the offending path, if given)."""

    text: str
    names: str | None = None


@dataclass
class Answer:
    """Exit 0 and ``check(result_json, stdout)`` holds."""

    check: Callable


def readme_answer(result, out):
    """The README example's answer: Si found, the absent Be and C not, and nothing to distrust."""
    found = {r["element"]: r for r in result["candidates"]}
    assert found["Si"]["detected"] and not found["Be"]["detected"] and not found["C"]["detected"]
    assert 0.005 <= found["Si"]["concentration"] <= 0.04


def answered(result, out):
    assert {r["element"] for r in result["candidates"]} == set(CANDIDATES.split(","))


# ----------------------------------------------------------------------------- cases
@dataclass
class Case:
    id: str
    build: Callable  # (tmp_path, gaas) -> (argv after "predict", the name the error must hold or None)
    expect: object


def _args(tmp, *, doped=None, pristine=None, candidates=CANDIDATES, host="GaAs", extra=()):
    return ["--host", host, "--pristine", str(pristine or EX / "pristine.csv"), "--doped", str(doped or EX / "doped.csv"),
            "--candidates", candidates, "--json", str(tmp / "out.json"), *extra]


def _json_to(target):
    def build(tmp, g):
        path = target(tmp)
        return [*_args(tmp)[:-2], "--json", str(path)], str(path)
    return build


def _plot_to(target):
    def build(tmp, g):
        path = target(tmp)
        return [*_args(tmp), "--plot", str(path)], str(path)
    return build


def _a_file(tmp):
    (tmp / "a_file").write_text("x")
    return tmp / "a_file"


def _doped(make):
    """A case whose doped spectrum is the file ``make(tmp, gaas)`` writes; errors must name it."""
    def build(tmp, g):
        path = make(tmp, g)
        return _args(tmp, doped=path), str(path)
    return build


def _pristine_and_doped(make):
    """``make(tmp, gaas)`` -> (pristine path, doped path)."""
    def build(tmp, g):
        p, d = make(tmp, g)
        return _args(tmp, pristine=p, doped=d), None
    return build


def _with(*extra, names=None):
    def build(tmp, g):
        return _args(tmp, extra=extra), names
    return build


def _option(name, make):
    """``--name FILE`` with the file ``make(tmp)`` writes; errors must name it."""
    def build(tmp, g):
        path = make(tmp)
        return _args(tmp, extra=(name, str(path))), str(path)
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
    return _args(tmp, extra=("--basis", str(path), "--method", "conditioned")), str(path)


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
    Case("conditioned-model-without-basis", _with("--model", str(pretrained_path("conditioned"))),
         Error("is a conditioned model: it reads each candidate through its signature")),
    Case("host-missing-cif", lambda t, g: (_args(t, host=str(t / "none.cif")), str(t / "none.cif")), Error("no such file")),
    Case("host-is-a-directory", lambda t, g: (_args(t, host=str(t)), str(t)), Error("directory")),
    Case("host-unknown-name", lambda t, g: (_args(t, host="Unobtainium"), "Unobtainium"), Error("Unobtainium")),
    Case("host-empty-cif", lambda t, g: (_args(t, host=write_text(t / "e.cif", "")), str(t / "e.cif")),
         Error("expected a CIF")),
    Case("host-binary-cif", lambda t, g: (_args(t, host=write_bytes(t / "b.cif", PNG)), str(t / "b.cif")),
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
    Case("doped-missing", _doped(lambda t, g: t / "none.csv"), Error("file not found")),
    Case("doped-is-a-directory", _doped(lambda t, g: t), Error("not a regular file")),
    Case("doped-empty", _doped(lambda t, g: write_text(t / "d.csv", "")), Error("empty file")),
    Case("doped-header-only", _doped(lambda t, g: write_text(t / "d.csv", "energy_meV,gpdos\n")), Error("empty file")),
    Case("doped-is-a-png", _doped(lambda t, g: write_bytes(t / "d.csv", PNG)), Error("not a text file")),
    Case("doped-utf16", _doped(lambda t, g: write_text(t / "d.csv", "energy_meV,gpdos\n1,2\n", "utf-16")),
         Error("not a text file")),
    Case("doped-one-column", _doped(lambda t, g: write_text(t / "d.dat", "\n".join(map(str, g.e)))),
         Error("expected at least 2")),
    Case("doped-ragged", _doped(lambda t, g: write_text(t / "d.dat", "1 2\n2 3\n3 4 5\n4 1\n5 1\n6 1\n")),
         Error(":3: 3 columns")),
    Case("doped-nan", _doped(lambda t, g: write_text(t / "d.dat", "1 2\n2 nan\n3 4\n4 1\n5 1\n6 1\n")), Error(":2: NaN")),
    Case("doped-negative", _doped(lambda t, g: write_csv(t / "d.csv", g.e, g.d - 0.01)), Error("negative intensity")),
    Case("doped-duplicate-energy", _doped(lambda t, g: write_csv(t / "d.csv", np.r_[g.e[:3], g.e[2:]], np.r_[g.d[:3], g.d[2:]])),
         Error("duplicate energy")),
    Case("doped-four-rows", _doped(lambda t, g: write_csv(t / "d.csv", g.e[:4], g.d[:4])), Error("at least 5 points")),
    Case("doped-all-zero", _doped(lambda t, g: write_csv(t / "d.csv", g.e, 0 * g.d)), Error("zero everywhere")),
    Case("doped-words", _doped(lambda t, g: write_text(t / "d.csv", "energy_meV,gpdos\n1,2\n2,lots\n3,1\n4,1\n5,1\n")),
         Error(":3: cannot parse 'lots'")),
    Case("doped-stops-inside-the-bands", _doped(lambda t, g: write_csv(t / "d.csv", g.e[g.e < 10], g.d[g.e < 10])),
         Error("cover the host's whole phonon spectrum")),
    Case("doped-headerless-mev", _pristine_and_doped(lambda t, g: (_headerless(t, g, "p"), _headerless(t, g, "d"))),
         Answer(lambda r, out: readme_answer(r, out) or _noted(r, "assumed meV"))),
    Case("doped-headerless-thz", _pristine_and_doped(
        lambda t, g: (_headerless(t, g, "p", 1 / 4.135667696, 120), _headerless(t, g, "d", 1 / 4.135667696, 120))),
         Answer(lambda r, out: readme_answer(r, out) or _noted(r, "assumed THz"))),
]


def _noted(result, text):
    assert any(text in n for n in result["notes"]), result["notes"]


ARGUMENTS = [
    Case("unit-unknown", _with("--unit", "furlongs"), Error("unknown energy unit")),
    Case("energy-scale-out-of-range", _with("--energy-scale", "5"), Error("energy_scale must lie in [0.5, 2]")),
    Case("recommend-negative", _with("--recommend", "-1"), Error("n_recommend must be ≥ 0")),
    Case("refine-without-basis", _with("--refine", "2"), Error("needs a basis")),
    Case("method-without-basis", _with("--method", "unmix"), Error("chooses how a basis is read: it needs a basis")),
    Case("basis-only-against-method", _with("--basis", str(EX / "basis.npz"), "--basis-only", "--method", "merge"),
         Error("--basis-only is --method unmix, which contradicts --method merge")),
    Case("refine-where-the-conditioned-network-answers",
         _with("--basis", str(EX / "basis.npz"), "--method", "conditioned", "--refine", "2"),
         Error("--refine corrects an unmixing, and here the conditioned network answers; add --method unmix")),
    Case("kind-the-model-does-not-read", _with("--kind", "total"),
         Error("the model reads gpdos spectra but the input is total; expected --kind gpdos")),
]



def _cands(text, *basis):
    def build(tmp, g):
        return _args(tmp, candidates=text, extra=("--basis", str(basis[0](tmp))) if basis else ()), None
    return build


def _example_basis(tmp):
    return EX / "basis.npz"


def _antisite_basis(tmp):
    """The example basis with its Zn@Ga signature relabelled Ga@As: a basis holding an antisite."""
    from dataclasses import replace

    from defectnet.unmix import SignatureBasis

    b = SignatureBasis.load(EX / "basis.npz")
    rename = {"Zn": "Ga"}
    config = dict(b.config, candidates=["Ga@As" if c == "Zn@Ga" else c for c in b.config["candidates"]])
    syn = dict(b.synthesis, sites={rename.get(k, k): ("As" if k == "Zn" else v) for k, v in b.synthesis["sites"].items()})
    b = replace(b, elements=tuple(rename.get(e, e) for e in b.elements), config=config, synthesis=syn)
    return b.save(tmp / "antisite.npz")


def _basis_answer(*elements):
    def check(result, out):
        readme_answer(result, out)
        assert {r["element"] for r in result["candidates"]} == set(elements)
    return check


CANDIDATE_CASES = [
    Case("candidate-host-element", _cands("Ga"), Error("candidate Ga is an element of the host GaAs")),
    Case("candidate-host-element-says-what-is-expected", _cands("Si,As"),
         Error("; expected candidates that are not elements of GaAs")),
    Case("candidate-host-element-among-others", _cands("Si,Zn,As"), Error("candidate As is an element of the host GaAs")),
    Case("candidate-antisite-without-basis", _cands("Ga@As"), Error("site-qualified candidate 'Ga@As'")),
    Case("candidate-site-qualified-without-basis", _cands("Si@Ga"), Error("site-qualified candidate 'Si@Ga'")),
    Case("candidate-noble-gas", _cands("Xe"), Error("'Xe' (a noble gas) is not in the dopant vocabulary")),
    Case("candidate-helium", _cands("He"), Error("'He' (a noble gas)")),
    Case("candidate-noble-gas-among-others", _cands("Si,Ar"), Error("'Ar' (a noble gas)")),
    Case("candidate-beyond-vocabulary", _cands("La"), Error("'La' (Z = 57) is not in the dopant vocabulary")),
    Case("candidate-uranium", _cands("Si,U"), Error("'U' (Z = 92)")),
    Case("candidate-unknown-symbol", _cands("Qq"), Error("unknown element 'Qq'")),
    Case("candidate-lowercase", _cands("si"), Error("unknown element 'si'")),
    Case("candidate-empty-site", _cands("Si@"), Error("names no site")),
    Case("candidate-unknown-site", _cands("Si@Qq"), Error("unknown element 'Qq'")),
    Case("candidates-empty", _cands(""), Error("no candidates")),
    Case("candidates-only-commas", _cands(",,"), Error("no candidates")),
    Case("candidates-repeated", _cands("Si,Si,Zn,Be,C,Zn"), Answer(readme_answer)),
    Case("candidates-with-spaces", _cands(" Si , Zn,Be , C"), Answer(readme_answer)),
    Case("basis-candidate-host-element", _cands("Si,Ga", _example_basis), Error("candidate Ga is an element of the host")),
    Case("basis-antisite-not-simulated", _cands("Si,Ga@As", _example_basis),
         Error("candidate Ga@As: the basis of GaAs has no Ga")),
    Case("basis-candidate-on-another-site", _cands("Si@As", _example_basis), Error("the basis of GaAs simulated Si@Ga")),
    Case("basis-candidate-not-in-basis", _cands("Si,Mg", _example_basis), Error("not in the basis of GaAs")),
    Case("basis-candidate-with-its-site", _cands("Si@Ga,Zn,Be,C", _example_basis), Answer(_basis_answer("Si", "Zn", "Be", "C"))),
    Case("basis-antisite-simulated", _cands("Si,Ga@As,Be,C", _antisite_basis), Answer(_basis_answer("Si", "Ga", "Be", "C"))),
    Case("basis-antisite-by-element-alone", _cands("Si,Ga", _antisite_basis), Error("must be named with its site")),
]



def no_signature(result, out):
    """Δ within its noise: nothing reported, whatever the network says, and the answer not trusted."""
    assert all(r["concentration"] == 0 and not r["detected"] for r in result["candidates"]), result["candidates"]
    assert result["detected"] == {} and result["trusted"] is False
    assert result["checks"]["signal"]["above_noise"] is False
    assert any(w.startswith("no dopant signature above noise") for w in result["warnings"]), result["warnings"]
    assert "warning: no dopant signature above noise" in out


def signature(check):
    """Δ above its noise, and ``check`` holds of the answer."""
    def inner(result, out):
        assert result["checks"]["signal"]["above_noise"] is True, result["checks"]
        assert not any("no dopant signature" in w for w in result["warnings"])
        check(result, out)
    return inner


def trusted_readme_answer(result, out):
    readme_answer(result, out)
    assert result["trusted"] is True and result["warnings"] == []


def _noisy(g, v, level, seed):
    """``v`` with multiplicative (counting-like) Gaussian noise of relative size ``level``."""
    return np.clip(v * (1 + level * np.random.default_rng(seed).standard_normal(v.size)), 0, None)


def _uniform(g, v, step=0.25):
    """``v`` (on the example's bins) sampled at uniform ``step`` meV points up to 120 meV."""
    e = np.arange(step / 2, 120.0, step)
    return e, np.interp(e, g.e, v)


def _baseline_noise(g, v, seed):
    """``v`` on a flat background of 5 % of its peak, with additive white noise of 0.5 % of it (never negative)."""
    peak = float(np.max(g.p))
    return v + 0.05 * peak + 0.005 * peak * np.random.default_rng(seed).standard_normal(v.size)


NOISE_CASES = [
    Case("no-signal-pristine-as-doped", _pristine_and_doped(lambda t, g: (EX / "pristine.csv", EX / "pristine.csv")),
         Answer(no_signature)),
    Case("no-signal-one-thz-file-twice", _pristine_and_doped(lambda t, g: (
        write_csv(t / "p_thz.csv", g.e / 4.135667696, g.p * 4.135667696, "frequency_THz,gpdos"),
        write_csv(t / "d_thz.csv", g.e / 4.135667696, g.p * 4.135667696, "frequency_THz,gpdos"))), Answer(no_signature)),
    Case("no-signal-3pc-counting-noise", _doped(lambda t, g: write_csv(t / "d.csv", g.e, _noisy(g, g.p, 0.03, 1))),
         Answer(no_signature)),
    Case("no-signal-10pc-counting-noise", _doped(lambda t, g: write_csv(t / "d.csv", g.e, _noisy(g, g.p, 0.10, 2))),
         Answer(no_signature)),
    Case("no-signal-noisy-pristine-clean-doped", _pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", g.e, _noisy(g, g.p, 0.05, 3)), EX / "pristine.csv")), Answer(no_signature)),
    Case("no-signal-both-noisy-on-a-background", _pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", g.e, _baseline_noise(g, g.p, 4)), write_csv(t / "d.csv", g.e, _baseline_noise(g, g.p, 5)))),
         Answer(no_signature)),
    Case("no-signal-uniform-grid-noise", _pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", *_uniform(g, g.p)), write_csv(t / "d.csv", _uniform(g, g.p)[0], _noisy(g, _uniform(g, g.p)[1], 0.03, 6)))),
         Answer(no_signature)),
    Case("no-signal-with-basis", lambda t, g: (_args(t, doped=EX / "pristine.csv", extra=("--basis", str(EX / "basis.npz"))), None),
         Answer(no_signature)),
    Case("signal-readme", _with(), Answer(signature(trusted_readme_answer))),
    Case("signal-readme-with-basis", _with("--basis", str(EX / "basis.npz")), Answer(signature(trusted_readme_answer))),
    Case("signal-readme-1pc-counting-noise", _doped(lambda t, g: write_csv(t / "d.csv", g.e, _noisy(g, g.d, 0.01, 7))),
         Answer(signature(trusted_readme_answer))),
    Case("signal-readme-3pc-counting-noise", _doped(lambda t, g: write_csv(t / "d.csv", g.e, _noisy(g, g.d, 0.03, 8))),
         Answer(signature(answered))),
    Case("signal-readme-on-a-uniform-grid", _pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", *_uniform(g, g.p)), write_csv(t / "d.csv", *_uniform(g, g.d)))), Answer(signature(readme_answer))),
    Case("signal-both-noisy-on-a-background", _pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", g.e, _baseline_noise(g, g.p, 9)), write_csv(t / "d.csv", g.e, _baseline_noise(g, g.d, 10)))),
         Answer(signature(answered))),
]

MANY = "Si,Zn,Be,C,Mg,Se,Te,Sn,Ge,Al,In,B,N,O,S,Li,H,Cu,Mn,Cr"


def implausible(*texts):
    """An answer given (exit 0) with warnings holding ``texts`` and their numbers, and not trusted."""
    def check(result, out):
        assert result["trusted"] is False
        for text in texts:
            assert any(text in w for w in result["warnings"]), result["warnings"]
            assert f"warning: {text}" in out or any(f"warning: {w}" in out for w in result["warnings"] if text in w)
        if "add up to" in " ".join(texts):
            total = sum(r["concentration"] for r in result["candidates"])
            assert total > 0.25 and f"add up to {100 * total:.1f} at.%" in " ".join(result["warnings"])
        if "dopants detected" in " ".join(texts):
            assert f"{len(result['detected'])} dopants detected" in " ".join(result["warnings"])
    return check


def _stretched(factor, candidates=CANDIDATES, extra=()):
    def build(tmp, g):
        path = write_csv(tmp / "d.csv", g.e * factor, g.d / factor)
        return _args(tmp, doped=path, candidates=candidates, extra=extra), path
    return build


PLAUSIBILITY_CASES = [
    Case("doped-stretched-x1.6-refused", _stretched(1.6), Error("with its energies × 1.59: below the pristine's band edge")),
    Case("doped-stretched-x1.4-refused", _stretched(1.4), Error("with its energies × 1.39")),
    Case("doped-stretched-x1.2-refused", _stretched(1.2), Error("with its energies × 1.19")),
    Case("doped-stretched-x1.2-with-basis-refused", _stretched(1.2, extra=("--basis", str(EX / "basis.npz"))),
         Error("with its energies × 1.19")),
    Case("implausible-total-doped-stretched-x1.6-forced", _stretched(1.6, extra=("--force",)),
         Answer(implausible("add up to", "with its energies × 1.59"))),
    Case("implausible-total-doped-shrunk-x0.6", _stretched(0.6, MANY, ("--force",)),
         Answer(implausible("add up to", "with its energies × 0.6"))),
    Case("doped-shrunk-x0.6-refused", _stretched(0.6, MANY), Error("with its energies × 0.6")),
    Case("implausible-both-doped-stretched-x1.9-forced", _stretched(1.9, MANY, ("--force",)),
         Answer(implausible("add up to", "dopants detected", "with its energies × 1.89"))),
    Case("implausible-count-noise-as-doped", lambda t, g: (_args(t, doped=write_csv(
        t / "d.csv", g.e, np.random.default_rng(0).uniform(size=g.e.size)), candidates=MANY, extra=("--force",)), None),
         Answer(implausible("dopants detected", "does not look like a phonon spectrum"))),
]



# ----------------------------------------------------------------------------- consistency with the host (issue 34)
def untrusted(*texts, check=answered):
    """An answer given under --force or with a doubt: warnings holding ``texts``, not trusted, and ``check`` holds."""
    def inner(result, out):
        assert result["trusted"] is False
        for text in texts:
            assert any(text in w for w in result["warnings"]), result["warnings"]
            assert any(f"warning: {w}" in out for w in result["warnings"] if text in w)
        check(result, out)
    return inner


def noted(text, check=readme_answer):
    def inner(result, out):
        _noted(result, text)
        check(result, out)
    return inner


def _noise(g, upto=None, seed=0):
    v = np.random.default_rng(seed).uniform(size=g.e.size)
    return v if upto is None else np.where(g.e < upto, v, 0.0)


def _other_host(name):
    """The pristine GPDoS of another committed host (the textbook chunk), on the example's bins."""
    from defectnet.data.export import read_training_file

    d = read_training_file(Path(__file__).resolve().parents[1] / "datasets" / "textbook" / "textbook-001.h5")
    i = int(np.flatnonzero(np.asarray(d["host_id"]) == d["host_names"].index(name))[0])
    return np.asarray(d["pristine_gpdos"][i], float)


def _cut(g, v, e_max):
    return g.e[g.e < e_max], v[g.e < e_max]


def _with_negative_rows(tmp, g, name, n=12):
    """The example's spectrum with ``n`` rows at negative energies (the energy-gain side) before it."""
    v = g.p if name == "p" else g.d
    return write_csv(tmp / f"{name}.csv", np.r_[-g.e[n - 1::-1], g.e], np.r_[0.2 * v[n - 1::-1], v])


def _in_unit(tmp, g, name, factor, header=None, e_max=None):
    v = g.p if name == "p" else g.d
    keep = g.e <= (e_max or np.inf)
    return write_csv(tmp / f"{name}.csv", g.e[keep] * factor, v[keep] / factor, header)


MEV_PER_THZ, CM1_PER_MEV = 4.135667696, 8.065543937

CONSISTENCY_CASES = [
    Case("noise-as-doped-refused", _doped(lambda t, g: write_csv(t / "d.csv", g.e, _noise(g))),
         Error("does not look like a phonon spectrum: bin-to-bin scatter holds 25 % of its norm²")),
    Case("noise-to-120-mev-as-doped-refused", _doped(lambda t, g: write_csv(t / "d.csv", g.e, _noise(g, 120, 3))),
         Error("does not look like a phonon spectrum")),
    Case("noise-as-doped-forced", lambda t, g: (_args(t, doped=write_csv(t / "d.csv", g.e, _noise(g)),
                                                      extra=("--force",)), None),
         Answer(untrusted("does not look like a phonon spectrum"))),
    Case("noise-as-doped-with-basis-refused", lambda t, g: (_args(t, doped=write_csv(t / "d.csv", g.e, _noise(g)),
                                                                  extra=("--basis", str(EX / "basis.npz"))), str(t / "d.csv")),
         Error("does not look like a phonon spectrum")),
    Case("doped-of-another-host-cdte", _doped(lambda t, g: write_csv(t / "d.csv", g.e, _other_host("CdTe"))),
         Error("is not a dilute doping of")),
    Case("doped-of-another-host-gap-answered-too-small", _doped(lambda t, g: write_csv(t / "d.csv", g.e, _other_host("GaP"))),
         Answer(untrusted("it does not explain the change"))),
    Case("doped-of-another-host-with-basis", lambda t, g: (_args(t, doped=write_csv(t / "d.csv", g.e, _other_host("CdTe")),
                                                                 extra=("--basis", str(EX / "basis.npz"))), str(t / "d.csv")),
         Error("is not a dilute doping of")),
    Case("both-files-of-another-host-inp", _pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", g.e, _other_host("InP")), write_csv(t / "d.csv", g.e, _other_host("InP")))),
         Error("is not a pristine spectrum of GaAs")),
    Case("both-files-of-another-host-forced", lambda t, g: (_args(
        t, pristine=write_csv(t / "p.csv", g.e, _other_host("InP")), doped=write_csv(t / "d.csv", g.e, _other_host("InP")),
        extra=("--force",)), None), Answer(untrusted("is not a pristine spectrum of GaAs"))),
    Case("swapped", _pristine_and_doped(lambda t, g: (EX / "doped.csv", EX / "pristine.csv")),
         Error(f"{EX / 'doped.csv'} (--pristine) and {EX / 'pristine.csv'} (--doped) look swapped: ")),
    Case("swapped-with-basis", lambda t, g: (_args(t, pristine=EX / "doped.csv", doped=EX / "pristine.csv",
                                                   extra=("--basis", str(EX / "basis.npz"))), str(EX / "doped.csv")),
         Error("look swapped: ")),
    Case("swapped-with-basis-unmix", lambda t, g: (_args(t, pristine=EX / "doped.csv", doped=EX / "pristine.csv",
                                                         extra=("--basis", str(EX / "basis.npz"), "--method", "unmix")),
                                                   str(EX / "doped.csv")),
         Error("holds 2.0 % of its area above the host's band edge 29.1 meV")),
    Case("swapped-forced", lambda t, g: (_args(t, pristine=EX / "doped.csv", doped=EX / "pristine.csv",
                                               extra=("--force",)), None), Answer(untrusted("look swapped"))),
    Case("swapped-noisy", _pristine_and_doped(lambda t, g: (write_csv(t / "p.csv", g.e, _noisy(g, g.d, 0.05, 12)),
                                                            write_csv(t / "d.csv", g.e, _noisy(g, g.p, 0.05, 13)))),
         Error("look swapped")),
    Case("right-way-both-noisy-10pc", _pristine_and_doped(lambda t, g: (write_csv(t / "p.csv", g.e, _noisy(g, g.p, 0.1, 14)),
                                                                        write_csv(t / "d.csv", g.e, _noisy(g, g.d, 0.1, 15)))),
         Answer(lambda r, out: answered(r, out) or not r["checks"]["swap"]["swapped"] or None)),
    Case("doped-energies-offset-3-mev", _doped(lambda t, g: write_csv(t / "d.csv", g.e + 3.0, g.d)),
         Error("with its energies shifted by +2.9")),
    Case("doped-one-value-near-the-float-limit", _doped(lambda t, g: write_csv(
        t / "d.csv", g.e, np.where(np.arange(g.e.size) == 200, 1e308, g.d))), Error("does not look like a phonon spectrum")),
    Case("both-stretched-x1.3-read-at-scale-1", _pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", g.e * 1.3, g.p / 1.3), write_csv(t / "d.csv", g.e * 1.3, g.d / 1.3))),
         Answer(untrusted("best with its energies × 0.769 more"))),
    Case("energy-scale-1.35-on-files-at-scale-1", _with("--energy-scale", "1.35"),
         Answer(untrusted("pass --energy-scale auto to fit it (here 1)"))),
    Case("basis-of-another-host", lambda t, g: (
        _args(t, host="Si", candidates="B,As", extra=("--basis", str(EX / "basis.npz"))), str(EX / "basis.npz")),
         Error("the host given is Si: expected a basis of Si (defectnet basis Si --candidates B,As")),
    Case("gaas-files-as-host-si", lambda t, g: (_args(t, host="Si", candidates="Ge,C"), str(EX / "pristine.csv")),
         Error("is far from Si's simulated band edge")),
    Case("gaas-files-as-host-cdte", lambda t, g: (_args(t, host="CdTe", candidates="Zn,Se"), str(EX / "pristine.csv")),
         Error("is not a pristine spectrum of CdTe")),
]

UNIT_CASES = [
    Case("headerless-thz-with-a-zero-tail", _pristine_and_doped(lambda t, g: (
        _in_unit(t, g, "p", 1 / MEV_PER_THZ), _in_unit(t, g, "d", 1 / MEV_PER_THZ))),
         Answer(noted("energy unit not stated, assumed THz from the host"))),
    Case("headerless-cm1-to-322", _pristine_and_doped(lambda t, g: (
        _in_unit(t, g, "p", CM1_PER_MEV, e_max=40), _in_unit(t, g, "d", CM1_PER_MEV, e_max=40))),
         Answer(noted("energy unit not stated, assumed cm-1 from the host"))),
    Case("headerless-mev", _pristine_and_doped(lambda t, g: (_in_unit(t, g, "p", 1.0), _in_unit(t, g, "d", 1.0))),
         Answer(noted("energy unit not stated, assumed meV from the host"))),
    Case("header-e-ev", _pristine_and_doped(lambda t, g: (
        _in_unit(t, g, "p", 1e-3, "E_eV,gpdos"), _in_unit(t, g, "d", 1e-3, "E_eV,gpdos"))), Answer(trusted_readme_answer)),
    Case("flag-thz-against-header-and-tag-mev", _with("--unit", "THz"),
         Answer(noted("the energy unit is stated differently (--unit says THz, header says meV, tag says meV); meV won"))),
    Case("flag-cm1-on-thz-files", lambda t, g: (_args(t, pristine=_in_unit(t, g, "p", 1 / MEV_PER_THZ),
                                                      doped=_in_unit(t, g, "d", 1 / MEV_PER_THZ), extra=("--unit", "cm-1")),
                                                None), Error("is far from GaAs's simulated band edge")),
    Case("header-thz-on-mev-numbers", _doped(lambda t, g: write_csv(t / "d.csv", g.e, g.d, "frequency_THz,gpdos")),
         Error("(header says THz) is far from GaAs's simulated band edge 29.1 meV; expected within ×4; in meV")),
    Case("headerless-no-unit-fits", _pristine_and_doped(lambda t, g: (
        _in_unit(t, g, "p", 2.5), _in_unit(t, g, "d", 2.5))), Error("(no unit stated) is far from GaAs's simulated")),
]

COVERAGE_CASES = [
    Case("both-cut-at-10-mev", _pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", *_cut(g, g.p, 10)), write_csv(t / "d.csv", *_cut(g, g.d, 10)))),
         Answer(untrusted("stops at 10.0 meV, inside the bands of GaAs (its simulated band edge is 29.1 meV)"))),
    Case("both-cut-below-the-local-modes-with-basis", lambda t, g: (_args(
        t, pristine=write_csv(t / "p.csv", *_cut(g, g.p, 32)), doped=write_csv(t / "d.csv", *_cut(g, g.d, 32)),
        extra=("--basis", str(EX / "basis.npz"))), None),
         Answer(untrusted("below where the simulated signatures of Si (37.4 meV), Be (54.5 meV), C (67.8 meV) reach 99 %"))),
    Case("negative-energy-rows-dropped", _pristine_and_doped(lambda t, g: (
        _with_negative_rows(t, g, "p"), _with_negative_rows(t, g, "d"))),
         Answer(noted("12 rows at negative energies (down to -1.66 meV) dropped", trusted_readme_answer))),
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
        return _args(tmp, host=write_text(tmp / name, text)), str(tmp / name)
    return build


WEAK_MESSAGE_CASES = [
    Case("decimal-commas-comma-separated", _doped(lambda t, g: write_text(t / "d.csv", _decimal_commas(g, g.d)))
         , Error(":1: decimal commas with commas between columns ('0,0721,0,004099')")),
    Case("decimal-commas-under-a-header", _doped(lambda t, g: write_text(
        t / "d.csv", _decimal_commas(g, g.d, header="energy_meV,gpdos"))), Error(":2: decimal commas")),
    Case("decimal-commas-integer-parts-repeat", _doped(lambda t, g: write_text(
        t / "d.csv", "".join(f"{10 + k // 2},{5 * (k % 2)},{k}\n" for k in range(40)))), Error("decimal commas")),
    Case("decimal-commas-semicolon-separated", _pristine_and_doped(lambda t, g: (
        write_text(t / "p.csv", _decimal_commas(g, g.p, ";", "energy_meV;gpdos")),
        write_text(t / "d.csv", _decimal_commas(g, g.d, ";", "energy_meV;gpdos")))), Answer(readme_answer)),
    Case("integers-with-commas-are-not-decimal-commas", _pristine_and_doped(lambda t, g: (
        _integer_csv(t, g, "p"), _integer_csv(t, g, "d"))), Answer(no_signature)),
    Case("csv-files-separated-by-tabs", _pristine_and_doped(lambda t, g: (
        write_text(t / "p.csv", "".join(f"{a!r}\t{b!r}\n" for a, b in zip(map(float, g.e), map(float, g.p)))),
        write_text(t / "d.csv", "".join(f"{a!r}\t{b!r}\n" for a, b in zip(map(float, g.e), map(float, g.d)))))),
         Answer(readme_answer)),
    Case("latin1-micro-sign-in-a-comment", _pristine_and_doped(lambda t, g: (
        _latin1(t, g, "p", "sample mass 250 µg"), _latin1(t, g, "d", "sample mass 250 µg"))), Answer(readme_answer)),
    Case("latin1-degree-sign-in-a-comment", _doped(lambda t, g: _latin1(t, g, "d", "T = 5 °K")), Answer(readme_answer)),
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

CASES = (OUTPUTS + OTHER_FILES + SPECTRUM_FILES + ARGUMENTS + CANDIDATE_CASES + NOISE_CASES + PLAUSIBILITY_CASES
         + WEAK_MESSAGE_CASES + CONSISTENCY_CASES + UNIT_CASES + COVERAGE_CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case, tmp_path, gaas):
    args, names = case.build(tmp_path, gaas)
    run = run_predict(args, tmp_path / "out.json")
    assert "Traceback" not in run.err, run.err
    assert not run.raw_warnings, run.raw_warnings
    if isinstance(case.expect, Error):
        lines = run.err.strip().splitlines()
        assert run.code == 2, (run.code, run.err)
        assert len(lines) == 1, run.err
        assert lines[0].startswith("defectnet: error: ") and case.expect.text in lines[0], lines[0]
        if names is not None:
            assert names in lines[0], lines[0]
        assert "StopIteration: StopIteration" not in lines[0] and "allow_pickle" not in lines[0]
    else:
        assert run.code == 0, run.err
        assert run.result is not None
        case.expect.check(run.result, run.out)


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
