"""Energy units stated, contradicted or missing, and spectra that stop too early."""

from __future__ import annotations

import numpy as np
import pytest

from .common import (EX, Answer, Case, Error, argv, doped, flags, noted, pristine_and_doped, run_case,
                     trusted_readme_answer, untrusted, write_csv)


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


UNIT_CASES = [
    Case("headerless-thz-with-a-zero-tail", pristine_and_doped(lambda t, g: (
        _in_unit(t, g, "p", 1 / MEV_PER_THZ), _in_unit(t, g, "d", 1 / MEV_PER_THZ))),
         Answer(noted("energy unit not stated, assumed THz from the host"))),
    Case("headerless-cm1-to-322", pristine_and_doped(lambda t, g: (
        _in_unit(t, g, "p", CM1_PER_MEV, e_max=40), _in_unit(t, g, "d", CM1_PER_MEV, e_max=40))),
         Answer(noted("energy unit not stated, assumed cm-1 from the host"))),
    Case("headerless-mev", pristine_and_doped(lambda t, g: (_in_unit(t, g, "p", 1.0), _in_unit(t, g, "d", 1.0))),
         Answer(noted("energy unit not stated, assumed meV from the host"))),
    Case("header-e-ev", pristine_and_doped(lambda t, g: (
        _in_unit(t, g, "p", 1e-3, "E_eV,gpdos"), _in_unit(t, g, "d", 1e-3, "E_eV,gpdos"))), Answer(trusted_readme_answer)),
    Case("flag-thz-against-header-and-tag-mev", flags("--unit", "THz"),
         Answer(noted("the energy unit is stated differently (--unit says THz, header says meV, tag says meV); meV won"))),
    Case("flag-cm1-on-thz-files", lambda t, g: (argv(t, pristine=_in_unit(t, g, "p", 1 / MEV_PER_THZ),
                                                      doped=_in_unit(t, g, "d", 1 / MEV_PER_THZ), extra=("--unit", "cm-1")),
                                                None), Error("is far from GaAs's simulated band edge")),
    Case("header-thz-on-mev-numbers", doped(lambda t, g: write_csv(t / "d.csv", g.e, g.d, "frequency_THz,gpdos")),
         Error("(header says THz) is far from GaAs's simulated band edge 29.1 meV; expected within ×4; in meV")),
    Case("headerless-no-unit-fits", pristine_and_doped(lambda t, g: (
        _in_unit(t, g, "p", 2.5), _in_unit(t, g, "d", 2.5))), Error("(no unit stated) is far from GaAs's simulated")),
]

COVERAGE_CASES = [
    Case("both-cut-at-10-mev", pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", *_cut(g, g.p, 10)), write_csv(t / "d.csv", *_cut(g, g.d, 10)))),
         Answer(untrusted("stops at 10.0 meV, inside the bands of GaAs (its simulated band edge is 29.1 meV)"))),
    Case("both-cut-below-the-local-modes-with-basis", lambda t, g: (argv(
        t, pristine=write_csv(t / "p.csv", *_cut(g, g.p, 32)), doped=write_csv(t / "d.csv", *_cut(g, g.d, 32)),
        extra=("--basis", str(EX / "basis.npz"))), None),
         Answer(untrusted("below where the simulated signatures of Si (37.4 meV), Be (54.5 meV), C (67.8 meV) reach 99 %"))),
    Case("negative-energy-rows-dropped", pristine_and_doped(lambda t, g: (
        _with_negative_rows(t, g, "p"), _with_negative_rows(t, g, "d"))),
         Answer(noted("12 rows at negative energies (down to -1.66 meV) dropped", trusted_readme_answer))),
]

CASES = UNIT_CASES + COVERAGE_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case, tmp_path, gaas):
    run_case(case, tmp_path, gaas)
