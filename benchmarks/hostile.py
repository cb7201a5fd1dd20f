"""An independent set of hostile inputs to ``defectnet predict`` (issue 34): how many get a clear error, a
correct answer, an answer with a warning, a silent wrong answer or a traceback.

The set is built here from other spectra than ``tests/hostile_inputs/`` (which work on the
README's GaAs example with fixed seeds): seeded draws of committed doped samples of GaAs, Si and
CdTe (``datasets/textbook``, hosts whose simulated pristine the MLIP computes once and caches),
each given as files that are valid in another form, corrupted, or meaningless, and the README
example under other corruptions than the tests'. Every input runs the CLI in-process
(``defectnet.cli.main(["predict", ...])``, as the tests do), first on the clean pair of its base
(the *baseline*), then on the hostile one.

How an outcome is classified (the rule, stated before the run):

* **traceback** — an exception escaped ``main`` or stderr holds a Python traceback or a raw
  warning, or the exit status is neither 0 nor 2;
* **clear error** — exit 2 with one line ``defectnet: error: ...`` that names the file to blame (or the
  option, for an argument) and says what was expected (holds "expected"); **unclear error** otherwise;
* an answer (exit 0) to a **valid** input (the same spectra in another form: other units, column
  order, separators, scale of the intensities ...) is **correct** when it is the baseline's — the same
  candidates detected, each concentration within max(0.25 at.%, 25 %) of the baseline's — and an
  **answer with warning** when it differs but says ``trusted: false``; a **silent wrong answer** when
  it differs and is trusted;
* an answer to a **meaningless** input (corrupted numbers, swapped or stretched files, the wrong host,
  a spectrum that is not a PDoS ...) is an **answer with warning** when untrusted; when trusted it is
  **correct** only if it is still the baseline's answer (the corruption did not change what the
  spectra say), and a **silent wrong answer** otherwise;
* an input with **no signal** (the doped spectrum is the pristine, re-noised) is correct when nothing
  is detected, and a silent wrong answer when something is, trusted.

    python benchmarks/hostile.py                      # ~20 min on one core; writes
                                                      # benchmarks/results/hostile/hostile.{json,md}
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "gaas-si-zn"
OUT = ROOT / "benchmarks" / "results" / "hostile"
TEXTBOOK = ROOT / "datasets" / "textbook" / "textbook-001.h5"
HOSTS = ("GaAs", "Si", "CdTe")  # bases: committed samples of these hosts
PER_HOST = 1
MEV_PER_THZ, CM1_PER_MEV = 4.135667696, 8.065543937
OUTCOMES = ("clear error", "unclear error", "correct answer", "answer with warning", "silent wrong answer", "traceback")


# ----------------------------------------------------------------------------- bases
@dataclass
class Base:
    """A pair of spectra with the candidates to ask about: ``e`` bin centres (meV), ``p``/``d`` GPDoS per meV."""

    name: str
    host: str
    e: np.ndarray
    p: np.ndarray
    d: np.ndarray
    candidates: list[str]
    truth: dict = field(default_factory=dict)
    extra: tuple = ()  # options every run of this base takes (e.g. --basis)


def bases(seed: int) -> list[Base]:
    """The README example (plain, and with its basis) and PER_HOST seeded committed samples of each of HOSTS
    with at most 25 at.% of dopants in all (the model's range)."""
    from defectnet.data.training_file import read_training_file
    from defectnet.elements import DOPANTS
    from defectnet.grid import EnergyGrid
    from defectnet.io import read_spectrum

    p, d = (read_spectrum(EX / f, column="gpdos") for f in ("pristine.csv", "doped.csv"))
    readme = json.loads((EX / "meta.json").read_text()).get("concentrations", {})
    out = [Base("readme", "GaAs", p.centers_mev, p.values, d.values, ["Si", "Zn", "Be", "C"], readme),
           Base("readme+basis", "GaAs", p.centers_mev, p.values, d.values, ["Si", "Zn", "Be", "C"], readme,
                ("--basis", str(EX / "basis.npz")))]
    t = read_training_file(TEXTBOOK)
    e = EnergyGrid.from_dict(t["grid"]).centers
    rng = np.random.default_rng(seed)
    for host in HOSTS:
        rows = np.flatnonzero((np.asarray(t["host_id"]) == t["host_names"].index(host)) & (t["targets"].sum(1) <= 0.25))
        for i in rng.choice(rows, PER_HOST, replace=False):
            cands = [DOPANTS[j] for j in np.flatnonzero(t["candidates"][i])]
            truth = {DOPANTS[j]: float(t["targets"][i, j]) for j in np.flatnonzero(t["targets"][i])}
            out.append(Base(f"{host}#{int(t['sample_id'][i]) % 10**6}", host, e, np.asarray(t["pristine_gpdos"][i], float),
                            np.asarray(t["doped_gpdos"][i], float), cands, truth))
    return out


def other_host_gpdos(name: str, e: np.ndarray) -> np.ndarray:
    """The pristine GPDoS of another committed host (textbook chunk), on the points ``e``."""
    from defectnet.data.training_file import read_training_file
    from defectnet.grid import EnergyGrid

    t = read_training_file(TEXTBOOK)
    i = int(np.flatnonzero(np.asarray(t["host_id"]) == t["host_names"].index(name))[0])
    return np.interp(e, EnergyGrid.from_dict(t["grid"]).centers, np.asarray(t["pristine_gpdos"][i], float))


# ----------------------------------------------------------------------------- writing files
def csv(path: Path, e, v, header="energy_meV,gpdos", sep=",", fmt=repr, newline="\n") -> str:
    rows = [f"{fmt(float(a))}{sep}{fmt(float(b))}" for a, b in zip(e, v)]
    path.write_text(newline.join(([header] if header else []) + rows) + newline)
    return str(path)


@dataclass
class Case:
    """A hostile input: ``make(base, tmp, rng)`` -> (pristine path, doped path, extra argv, the path or option an
    error must name); ``kind`` valid | meaningless | no-signal."""

    id: str
    kind: str
    make: Callable
    only: str | None = None  # apply to this base only (its name), else to every base


def _pair(pf, df, extra=(), blame=None):
    return pf, df, list(extra), blame


def _doped(transform, blame=True, header="energy_meV,gpdos", **kw):
    """The doped file is ``transform(e, d, rng)`` -> (e, v); the pristine file is clean."""
    def make(b, tmp, rng):
        e, v = transform(b.e, b.d, rng)
        df = csv(tmp / "d.csv", e, v, header, **kw)
        return _pair(csv(tmp / "p.csv", b.e, b.p), df, blame=df if blame else None)
    return make


def _both(transform, header="energy_meV,gpdos", extra=(), blame=None, **kw):
    """Both files are ``transform(e, v, rng)``; an error must name the pristine one when ``blame``."""
    def make(b, tmp, rng):
        pf = csv(tmp / "p.csv", *transform(b.e, b.p, rng), header, **kw)
        df = csv(tmp / "d.csv", *transform(b.e, b.d, rng), header, **kw)
        return _pair(pf, df, extra, pf if blame else None)
    return make


def _noise(v, level, rng):
    return np.clip(v * (1 + level * rng.standard_normal(v.size)), 0, None)


def _text(make_text, name="d.csv"):
    """The doped file's text is ``make_text(base, rng)``."""
    def make(b, tmp, rng):
        (tmp / name).write_bytes(make_text(b, rng))
        return _pair(csv(tmp / "p.csv", b.e, b.p), str(tmp / name), blame=str(tmp / name))
    return make


def _rows(b, v=None):
    return [f"{float(a)!r},{float(x)!r}" for a, x in zip(b.e, b.d if v is None else v)]


def _uniform(e, v, step=0.5, top=None):
    top = top or min(float(e[-1]), 4 * float(e[np.searchsorted(np.cumsum(v * np.gradient(e)), 0.995 * np.sum(v * np.gradient(e)))]))
    x = np.arange(step / 2, top, step)
    return x, np.interp(x, e, v)


def _edge(b):
    c = np.cumsum(b.p * np.gradient(b.e))
    return float(b.e[np.searchsorted(c, 0.995 * c[-1])])


def _swap_columns(b, tmp, rng):
    def write(name, v):
        (tmp / name).write_text("gpdos,energy_meV\n" + "".join(f"{float(x)!r},{float(a)!r}\n" for a, x in zip(b.e, v)))
        return str(tmp / name)
    return _pair(write("p.csv", b.p), write("d.csv", b.d))


def _thz(e, v, r):
    return e / MEV_PER_THZ, v * MEV_PER_THZ


def _cm1(e, v, r):
    return e * CM1_PER_MEV, v / CM1_PER_MEV


def _reversed(e, v, r):
    return e[::-1], v[::-1]


def _mirrored(e, v, r):
    n = 20
    return np.r_[-e[n - 1::-1], e], np.r_[0.3 * v[n - 1::-1], v]


def _scaled(factor):
    return lambda e, v, r: (e, v * factor)


def _comments(b, tmp, rng):
    def write(name, v):
        body = "".join(f"{float(a)!r}\t{float(x)!r}\n" for a, x in zip(b.e, v))
        (tmp / name).write_text(f"# sample {name}, T = 10 K\n# E (meV)\tS(E)\n{body}\n\n")
        return str(tmp / name)
    return _pair(write("p.dat", b.p), write("d.dat", b.d))


def _with_errors(b, tmp, rng):
    def write(name, v):
        err = 0.02 * v + 1e-6
        (tmp / name).write_text("energy_meV,gpdos,error\n" + "".join(
            f"{float(a)!r},{float(x)!r},{float(s)!r}\n" for a, x, s in zip(b.e, v, err)))
        return str(tmp / name)
    return _pair(write("p.csv", b.p), write("d.csv", b.d))


VALID = [
    Case("columns-in-the-other-order-named", "valid", _swap_columns),
    Case("thz-with-header", "valid", _both(_thz, header="frequency_THz,gpdos")),
    Case("cm1-without-header", "valid", _both(_cm1, header=None)),
    Case("mev-tab-separated-without-header", "valid", _both(lambda e, v, r: (e, v), header=None, sep="\t")),
    Case("semicolons", "valid", _both(lambda e, v, r: (e, v), header="energy_meV;gpdos", sep=";")),
    Case("rows-in-reverse-order", "valid", _both(_reversed)),
    Case("crlf-line-ends", "valid", _both(lambda e, v, r: (e, v), newline="\r\n")),
    Case("intensities-x1000", "valid", _both(_scaled(1000.0))),
    Case("doped-intensities-x0.001", "valid", _doped(lambda e, v, r: (e, v * 1e-3), blame=False)),
    Case("energy-gain-side-mirrored", "valid", _both(_mirrored)),
    Case("comments-and-trailing-blank-lines", "valid", _comments),
    Case("uniform-0.5-mev-points", "valid", _both(lambda e, v, r: _uniform(e, v))),
    Case("error-column", "valid", _with_errors),
    Case("energies-to-4-digits", "valid", _both(lambda e, v, r: (e, v), fmt=lambda x: f"{x:.4g}")),
]


# --- meaningless or corrupted --------------------------------------------------------------------------------
def _dup_rows(e, v, r):
    i = np.sort(r.choice(e.size, 15, replace=False))
    return np.insert(e, i, e[i]), np.insert(v, i, v[i] * 1.3)


def _set(value, share=0.0):
    def t(e, v, r):
        v = v.copy()
        v[r.integers(e.size // 4, e.size // 2)] = value
        return e, v
    return t


def _partial_file(b, rng):
    text = "energy_meV,gpdos\n" + "\n".join(_rows(b))
    return text[: int(len(text) * 0.37)].encode()  # cut mid-row, as a half-written file


def _negative(e, v, r):
    return e, v - 0.3 * float(np.median(v[v > 0]))


def _log(e, v, r):
    return e, np.log10(np.clip(v, 1e-12, None))


def _cumulative(e, v, r):
    return e, np.cumsum(v * np.gradient(e))


def _shuffled(e, v, r):
    return e, r.permutation(v)


def _squared(e, v, r):
    return e, v ** 2


def _offset(shift):
    return lambda e, v, r: (e + shift, v)


def _stretch(f):
    return lambda e, v, r: (e * f, v / f)


def _cut_at(share):
    def make(b, tmp, rng):
        keep = b.e < share * _edge(b)
        df = csv(tmp / "d.csv", b.e[keep], b.d[keep])
        return _pair(csv(tmp / "p.csv", b.e[keep], b.p[keep]), df, blame=df)
    return make


def _swapped(b, tmp, rng):
    pf, df = csv(tmp / "p.csv", b.e, b.d), csv(tmp / "d.csv", b.e, b.p)
    return _pair(pf, df, blame=pf)


def _swapped_noisy(b, tmp, rng):
    pf, df = csv(tmp / "p.csv", b.e, _noise(b.d, 0.05, rng)), csv(tmp / "d.csv", b.e, _noise(b.p, 0.05, rng))
    return _pair(pf, df, blame=pf)


def _wrong_host(other, doped_too=True):
    def make(b, tmp, rng):
        g = other_host_gpdos(other, b.e)
        pf = csv(tmp / "p.csv", b.e, g)
        df = csv(tmp / "d.csv", b.e, g * (1 + 0.02 * np.sin(b.e)) if doped_too else b.d)
        return _pair(pf, df, blame=pf if doped_too else df)
    return make


def _doped_other_host(other):
    def make(b, tmp, rng):
        df = csv(tmp / "d.csv", b.e, other_host_gpdos(other, b.e))
        return _pair(csv(tmp / "p.csv", b.e, b.p), df, blame=df)
    return make


def _host_flag(host):
    def make(b, tmp, rng):
        return _pair(csv(tmp / "p.csv", b.e, b.p), csv(tmp / "d.csv", b.e, b.d), ("--host", host), blame=None)
    return make


def _option(*extra, blame=None):
    def make(b, tmp, rng):
        return _pair(csv(tmp / "p.csv", b.e, b.p), csv(tmp / "d.csv", b.e, b.d), extra, blame)
    return make


def _ev_labelled_mev(b, tmp, rng):
    return _pair(csv(tmp / "p.csv", b.e, b.p, "E_eV,gpdos"), csv(tmp / "d.csv", b.e, b.d, "E_eV,gpdos"),
                 blame=str(tmp / "d.csv"))  # the doped file is read first


def _flat(e, v, r):
    return e, np.where(e < 2 * e[np.argmax(v)], 1.0, 0.0)


def _spike(e, v, r):
    out = np.zeros_like(v)
    out[np.argmax(v)] = 1.0
    return e, out


def _coarse(e, v, r):
    x = np.linspace(0.5, 2.5 * float(e[np.argmax(v)]), 7)
    return x, np.interp(x, e, v)


MEANINGLESS = [
    Case("doped-duplicated-rows", "meaningless", _doped(_dup_rows)),
    Case("doped-nan", "meaningless", _doped(_set(float("nan")))),
    Case("doped-inf", "meaningless", _doped(_set(float("inf")))),
    Case("doped-1e308", "meaningless", _doped(_set(1e308))),
    Case("doped-half-written", "meaningless", _text(_partial_file)),
    Case("doped-over-subtracted-background", "meaningless", _doped(_negative)),
    Case("doped-log10-intensities", "meaningless", _doped(_log)),
    Case("both-cumulative", "meaningless", _both(_cumulative)),
    Case("doped-intensities-shuffled", "meaningless", _doped(_shuffled)),
    Case("doped-intensities-squared", "meaningless", _doped(_squared)),
    Case("doped-energies-offset-3-mev", "meaningless", _doped(_offset(3.0))),
    Case("doped-stretched-x1.25", "meaningless", _doped(_stretch(1.25))),
    Case("doped-shrunk-x0.85", "meaningless", _doped(_stretch(0.85))),
    Case("both-stretched-x1.3", "meaningless", _both(_stretch(1.3), blame=True)),
    Case("both-cut-at-half-the-band-edge", "meaningless", _cut_at(0.5)),
    Case("swapped", "meaningless", _swapped),
    Case("swapped-with-5pc-noise", "meaningless", _swapped_noisy),
    Case("both-files-of-ZnS", "meaningless", _wrong_host("ZnS")),
    Case("doped-file-of-GaP", "meaningless", _doped_other_host("GaP")),
    Case("meV-numbers-under-an-eV-header", "meaningless", _ev_labelled_mev),
    Case("doped-flat", "meaningless", _doped(_flat)),
    Case("doped-one-spike", "meaningless", _doped(_spike)),
    Case("doped-7-points", "meaningless", _doped(_coarse)),
    Case("energy-scale-0.6", "meaningless", _option("--energy-scale", "0.6")),
    Case("energy-scale-1.35", "meaningless", _option("--energy-scale", "1.35")),
]

NO_SIGNAL = [
    Case("doped-is-pristine-with-2pc-noise", "no-signal", _doped(lambda e, v, r: (e, v), blame=False)),
    Case("both-pristine-with-5pc-noise", "no-signal", _both(lambda e, v, r: (e, v))),
]


def _no_signal(case):
    """Both files from the pristine spectrum, with their own noise."""
    level = 0.02 if "2pc" in case.id else 0.05

    def make(b, tmp, rng):
        pf = csv(tmp / "p.csv", b.e, b.p if level == 0.02 else _noise(b.p, level, rng))
        df = csv(tmp / "d.csv", b.e, _noise(b.p, level, rng))
        return _pair(pf, df)
    return Case(case.id, "no-signal", make)


NO_SIGNAL = [_no_signal(c) for c in NO_SIGNAL]

def _json_under_a_file(b, tmp, rng):
    (tmp / "f").write_text("x")
    return _pair(csv(tmp / "p.csv", b.e, b.p), csv(tmp / "d.csv", b.e, b.d), ("--json", str(tmp / "f" / "o.json")),
                 blame=str(tmp / "f" / "o.json"))


# Arguments and cross-host inputs, once each (on the README base, or the first base of a host).
ONCE = [
    Case("gaas-files-under-host-Ge", "meaningless", _host_flag("Ge"), only="readme"),
    Case("gaas-files-under-host-ZnS", "meaningless", _host_flag("ZnS"), only="readme"),
    Case("si-files-under-host-GaAs", "meaningless",
         lambda b, tmp, rng: _pair(csv(tmp / "p.csv", b.e, other_host_gpdos("Si", b.e)),
                                   csv(tmp / "d.csv", b.e, other_host_gpdos("Si", b.e) * 1.0), blame=str(tmp / "p.csv")),
         only="readme"),
    Case("candidates-in-upper-case", "meaningless", _option("--candidates", "SI,ZN", blame="SI"), only="readme"),
    Case("candidate-deuterium", "meaningless", _option("--candidates", "Si,D", blame="D"), only="readme"),
    Case("unit-flag-ev-on-mev-files", "meaningless", _option("--unit", "eV", blame="p.csv"), only="readme"),
    Case("kind-total-on-gpdos", "meaningless", _option("--kind", "total", blame="total"), only="readme"),
    Case("basis-of-another-host", "meaningless",
         lambda b, tmp, rng: _pair(csv(tmp / "p.csv", b.e, b.p), csv(tmp / "d.csv", b.e, b.d),
                                   ("--basis", str(EX / "basis.npz")), blame=None), only="host:Si"),
    Case("json-under-a-file", "meaningless", _json_under_a_file, only="readme"),
]

CASES = VALID + MEANINGLESS + NO_SIGNAL


# ----------------------------------------------------------------------------- running
def run_predict(args: list[str], json_path: Path) -> SimpleNamespace:
    """``defectnet predict ARGS`` in-process (an exception escaping ``main`` is recorded as a traceback): ``code``,
    ``out``, ``err``, ``raw_warnings``, ``result`` (the JSON written, or None) and ``seconds``."""
    from defectnet.cli import run_captured

    t0 = time.perf_counter()
    code, out, err, raw = run_captured(["predict", *args])
    out, err = (t.replace(f"{ROOT}/", "") for t in (out, err))  # paths in messages relative to the repo: no machine path
    result = json.loads(json_path.read_text()) if code == 0 and json_path.is_file() else None
    return SimpleNamespace(code=code, out=out, err=err, raw_warnings=raw, result=result, seconds=time.perf_counter() - t0)


def predict_argv(b: Base, pf, df, extra, json_path: Path) -> list[str]:
    args = ["--host", b.host, "--pristine", str(pf), "--doped", str(df), "--candidates", ",".join(b.candidates),
            "--json", str(json_path), *b.extra]
    extra = list(extra)
    while extra:  # an option given by the case replaces the base's
        key, value = extra[0], extra[1]
        if key in args:
            args[args.index(key) + 1] = value
        else:
            args += [key, value]
        extra = extra[2:]
    return args


def answer(result: dict) -> dict:
    return {r["element"]: (float(r["concentration"]), bool(r["detected"])) for r in result["candidates"]}


def same_answer(a: dict, baseline: dict) -> bool:
    """The same candidates detected, each concentration within max(0.25 at.%, 25 %) of the baseline's."""
    if set(a) != set(baseline):
        return False
    for el, (c, det) in a.items():
        c0, det0 = baseline[el]
        if det != det0 or abs(c - c0) > max(0.0025, 0.25 * c0):
            return False
    return True


def classify(case: Case, run: SimpleNamespace, blame: str | None, baseline: dict | None) -> tuple[str, str]:
    """(outcome, why) by the rule of the module docstring."""
    if "Traceback" in run.err or run.raw_warnings or run.code not in (0, 2):
        return "traceback", (run.err.strip().splitlines() or ["?"])[-1][:300] + (
            f" (raw warnings: {run.raw_warnings[:2]})" if run.raw_warnings else "")
    if run.code == 2:
        lines = run.err.strip().splitlines()
        line = lines[0] if lines else ""
        clear = (len(lines) == 1 and line.startswith("defectnet: error: ") and "expected" in line
                 and (blame is None or blame in line))
        return ("clear error" if clear else "unclear error"), " | ".join(lines)[:400]
    if run.result is None:
        return "traceback", "exit 0 without the JSON it was asked to write"
    a, trusted = answer(run.result), bool(run.result.get("trusted"))
    said = ", ".join(f"{el} {100 * c:.2f}" for el, (c, det) in a.items() if det) or "nothing detected"
    why = f"{said}; trusted {trusted}" + ("" if trusted else f"; warnings: {' | '.join(run.result['warnings'])[:300]}")
    if case.kind == "no-signal":
        if not any(det for _, det in a.values()):
            return "correct answer", why
        return ("answer with warning" if not trusted else "silent wrong answer"), why
    if baseline is not None and same_answer(a, baseline):
        return "correct answer", why
    return ("answer with warning" if not trusted else "silent wrong answer"), why + (
        "" if baseline is None else "; baseline: " + (", ".join(f"{el} {100 * c:.2f}" for el, (c, det) in baseline.items()
                                                             if det) or "nothing detected"))


def applies(only: str, b: Base, all_bases: list[Base]) -> bool:
    """Whether a case for ``only`` (a base's name, or ``host:X``: the first base of host X) runs on base ``b``."""
    if only.startswith("host:"):
        return b is next((x for x in all_bases if x.host == only[5:]), None)
    return b.name == only


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=34, help="draws the committed samples and the noise")
    ap.add_argument("--out", type=Path, default=OUT, help="folder for hostile.{json,md}")
    ap.add_argument("--only", default=None, help="run only the cases whose id holds this text (not written)")
    args = ap.parse_args(argv)
    from defectnet.provenance import provenance

    t0, prov = time.perf_counter(), provenance()
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp_root = Path(tmpdir)
        all_bases = bases(args.seed)
        for k, b in enumerate(all_bases):
            tmp = tmp_root / f"base{k}"
            tmp.mkdir()
            clean = run_predict(predict_argv(b, csv(tmp / "p0.csv", b.e, b.p), csv(tmp / "d0.csv", b.e, b.d), (), tmp / "b.json"),
                                tmp / "b.json")
            baseline = answer(clean.result) if clean.result else None
            print(f"{b.name} ({b.host}, candidates {','.join(b.candidates)}, truth "
                  f"{', '.join(f'{el} {100 * c:.2f}' for el, c in b.truth.items())}): baseline "
                  + (", ".join(f"{el} {100 * c:.2f}" for el, (c, det) in baseline.items() if det) if baseline else
                     f"none ({(clean.err.strip().splitlines() or ['?'])[0][:200]})"), flush=True)
            for j, case in enumerate(CASES + ONCE):
                if case.only and not applies(case.only, b, all_bases):
                    continue
                if args.only and args.only not in case.id:
                    continue
                work = tmp / f"c{j}"
                work.mkdir()
                rng = np.random.default_rng([args.seed, k, j])
                pf, df, extra, blame = case.make(b, work, rng)
                run = run_predict(predict_argv(b, pf, df, extra, work / "o.json"), work / "o.json")
                outcome, why = classify(case, run, blame, baseline)
                rows.append({"base": b.name, "host": b.host, "case": case.id, "kind": case.kind, "outcome": outcome,
                             "exit": run.code, "seconds": round(run.seconds, 1),
                             "detail": why.replace(str(tmp_root), "$TMP")})
                print(f"  {case.id:40s} {outcome:20s} {rows[-1]['detail'][:160]}", flush=True)
    counts = {o: sum(r["outcome"] == o for r in rows) for o in OUTCOMES}
    result = {"inputs": len(rows), "counts": counts,
              "by_kind": {k: {o: sum(r["outcome"] == o and r["kind"] == k for r in rows) for o in OUTCOMES}
                          for k in ("valid", "meaningless", "no-signal")},
              "rows": rows, "seed": args.seed, "minutes": round((time.perf_counter() - t0) / 60, 1), "provenance": prov}
    print(json.dumps({"inputs": len(rows), "counts": counts}, ensure_ascii=False))
    if not args.only:
        write_results(result, args.out)
    return 0


def write_results(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "hostile.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    prov = result["provenance"]
    lines = ["# Hostile inputs to `defectnet predict` (issue 34)", "",
             f"{result['inputs']} inputs (seed {result['seed']}), {result['minutes']} min. Commit {prov['commit']}, "
             f"`{prov['command']}`, {prov['date']}. The rule that classifies them is in `benchmarks/hostile.py`.", "",
             "| outcome | all | valid | meaningless | no signal |", "| --- | --- | --- | --- | --- |"]
    for o in OUTCOMES:
        lines.append(f"| {o} | {result['counts'][o]} | " + " | ".join(
            str(result["by_kind"][k][o]) for k in ("valid", "meaningless", "no-signal")) + " |")
    lines += ["", "| base | case | outcome | detail |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['base']} | {r['case']} | {r['outcome']} | {r['detail'].replace('|', '/')[:200]} |"
              for r in result["rows"]]
    (out / "hostile.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
