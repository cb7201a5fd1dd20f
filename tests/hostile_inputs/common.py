"""What every hostile-input module shares: the in-process runner, the expectations, the case builders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from defectnet.cli import run_captured

EX = Path(__file__).resolve().parents[2] / "examples" / "gaas-si-zn"
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


@dataclass
class Case:
    id: str
    build: Callable  # (tmp_path, gaas) -> (argv after "predict", the name the error must hold or None)
    expect: object


def argv(tmp, *, doped=None, pristine=None, candidates=CANDIDATES, host="GaAs", extra=()):
    return ["--host", host, "--pristine", str(pristine or EX / "pristine.csv"), "--doped", str(doped or EX / "doped.csv"),
            "--candidates", candidates, "--json", str(tmp / "out.json"), *extra]


def doped(make):
    """A case whose doped spectrum is the file ``make(tmp, gaas)`` writes; errors must name it."""
    def build(tmp, g):
        path = make(tmp, g)
        return argv(tmp, doped=path), str(path)
    return build


def pristine_and_doped(make):
    """``make(tmp, gaas)`` -> (pristine path, doped path)."""
    def build(tmp, g):
        p, d = make(tmp, g)
        return argv(tmp, pristine=p, doped=d), None
    return build


def flags(*extra, names=None):
    def build(tmp, g):
        return argv(tmp, extra=extra), names
    return build


def assert_noted(result, text):
    assert any(text in n for n in result["notes"]), result["notes"]


def no_signature(result, out):
    """Δ within its noise: nothing reported, whatever the network says, and the answer not trusted."""
    assert all(r["concentration"] == 0 and not r["detected"] for r in result["candidates"]), result["candidates"]
    assert result["detected"] == {} and result["trusted"] is False
    assert result["checks"]["signal"]["above_noise"] is False
    assert any(w.startswith("no dopant signature above noise") for w in result["warnings"]), result["warnings"]
    assert "warning: no dopant signature above noise" in out


def trusted_readme_answer(result, out):
    readme_answer(result, out)
    assert result["trusted"] is True and result["warnings"] == []


def noisy(g, v, level, seed):
    """``v`` with multiplicative (counting-like) Gaussian noise of relative size ``level``."""
    return np.clip(v * (1 + level * np.random.default_rng(seed).standard_normal(v.size)), 0, None)


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
        assert_noted(result, text)
        check(result, out)
    return inner


def run_case(case: Case, tmp_path: Path, gaas: Spectra) -> None:
    """Run ``case`` against the example spectra ``gaas`` in ``tmp_path``: no traceback, no raw warning, and its
    one-line error (naming what it names) or an answer its check accepts."""
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
