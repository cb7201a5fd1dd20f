"""Signal against noise, and the plausibility of the answer: no signature above noise, too much or too many dopants."""

from __future__ import annotations

import numpy as np
import pytest

from .common import (CANDIDATES, EX, Answer, Case, Error, answered, argv, doped, flags, no_signature, noisy,
                     pristine_and_doped, readme_answer, run_case, trusted_readme_answer, write_csv)


def signature(check):
    """Δ above its noise, and ``check`` holds of the answer."""
    def inner(result, out):
        assert result["checks"]["signal"]["above_noise"] is True, result["checks"]
        assert not any("no dopant signature" in w for w in result["warnings"])
        check(result, out)
    return inner


def _uniform(g, v, step=0.25):
    """``v`` (on the example's bins) sampled at uniform ``step`` meV points up to 120 meV."""
    e = np.arange(step / 2, 120.0, step)
    return e, np.interp(e, g.e, v)


def _baseline_noise(g, v, seed):
    """``v`` on a flat background of 5 % of its peak, with additive white noise of 0.5 % of it (never negative)."""
    peak = float(np.max(g.p))
    return v + 0.05 * peak + 0.005 * peak * np.random.default_rng(seed).standard_normal(v.size)


NOISE_CASES = [
    Case("no-signal-pristine-as-doped", pristine_and_doped(lambda t, g: (EX / "pristine.csv", EX / "pristine.csv")),
         Answer(no_signature)),
    Case("no-signal-one-thz-file-twice", pristine_and_doped(lambda t, g: (
        write_csv(t / "p_thz.csv", g.e / 4.135667696, g.p * 4.135667696, "frequency_THz,gpdos"),
        write_csv(t / "d_thz.csv", g.e / 4.135667696, g.p * 4.135667696, "frequency_THz,gpdos"))), Answer(no_signature)),
    Case("no-signal-3pc-counting-noise", doped(lambda t, g: write_csv(t / "d.csv", g.e, noisy(g, g.p, 0.03, 1))),
         Answer(no_signature)),
    Case("no-signal-10pc-counting-noise", doped(lambda t, g: write_csv(t / "d.csv", g.e, noisy(g, g.p, 0.10, 2))),
         Answer(no_signature)),
    Case("no-signal-noisy-pristine-clean-doped", pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", g.e, noisy(g, g.p, 0.05, 3)), EX / "pristine.csv")), Answer(no_signature)),
    Case("no-signal-both-noisy-on-a-background", pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", g.e, _baseline_noise(g, g.p, 4)), write_csv(t / "d.csv", g.e, _baseline_noise(g, g.p, 5)))),
         Answer(no_signature)),
    Case("no-signal-uniform-grid-noise", pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", *_uniform(g, g.p)), write_csv(t / "d.csv", _uniform(g, g.p)[0], noisy(g, _uniform(g, g.p)[1], 0.03, 6)))),
         Answer(no_signature)),
    Case("no-signal-with-basis", lambda t, g: (argv(t, doped=EX / "pristine.csv", extra=("--basis", str(EX / "basis.npz"))), None),
         Answer(no_signature)),
    Case("signal-readme", flags(), Answer(signature(trusted_readme_answer))),
    Case("signal-readme-with-basis", flags("--basis", str(EX / "basis.npz")), Answer(signature(trusted_readme_answer))),
    Case("signal-readme-1pc-counting-noise", doped(lambda t, g: write_csv(t / "d.csv", g.e, noisy(g, g.d, 0.01, 7))),
         Answer(signature(trusted_readme_answer))),
    Case("signal-readme-3pc-counting-noise", doped(lambda t, g: write_csv(t / "d.csv", g.e, noisy(g, g.d, 0.03, 8))),
         Answer(signature(answered))),
    Case("signal-readme-on-a-uniform-grid", pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", *_uniform(g, g.p)), write_csv(t / "d.csv", *_uniform(g, g.d)))), Answer(signature(readme_answer))),
    Case("signal-both-noisy-on-a-background", pristine_and_doped(lambda t, g: (
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
        return argv(tmp, doped=path, candidates=candidates, extra=extra), path
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
    Case("implausible-count-noise-as-doped", lambda t, g: (argv(t, doped=write_csv(
        t / "d.csv", g.e, np.random.default_rng(0).uniform(size=g.e.size)), candidates=MANY, extra=("--force",)), None),
         Answer(implausible("dopants detected", "does not look like a phonon spectrum"))),
]

CASES = NOISE_CASES + PLAUSIBILITY_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case, tmp_path, gaas):
    run_case(case, tmp_path, gaas)
