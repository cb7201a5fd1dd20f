"""Consistency with the host (issue 34): spectra of another host, swapped files, shifted or rescaled energies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .common import (EX, Answer, Case, Error, answered, argv, doped, flags, noisy, pristine_and_doped, run_case,
                     untrusted, write_csv)


def _noise(g, upto=None, seed=0):
    v = np.random.default_rng(seed).uniform(size=g.e.size)
    return v if upto is None else np.where(g.e < upto, v, 0.0)


def _other_host(name):
    """The pristine GPDoS of another committed host (the textbook chunk), on the example's bins."""
    from defectnet.data.training_file import read_training_file

    d = read_training_file(Path(__file__).resolve().parents[2] / "datasets" / "textbook" / "textbook-001.h5")
    i = int(np.flatnonzero(np.asarray(d["host_id"]) == d["host_names"].index(name))[0])
    return np.asarray(d["pristine_gpdos"][i], float)


CASES = [
    Case("noise-as-doped-refused", doped(lambda t, g: write_csv(t / "d.csv", g.e, _noise(g))),
         Error("does not look like a phonon spectrum: bin-to-bin scatter holds 25 % of its norm²")),
    Case("noise-to-120-mev-as-doped-refused", doped(lambda t, g: write_csv(t / "d.csv", g.e, _noise(g, 120, 3))),
         Error("does not look like a phonon spectrum")),
    Case("noise-as-doped-forced", lambda t, g: (argv(t, doped=write_csv(t / "d.csv", g.e, _noise(g)),
                                                      extra=("--force",)), None),
         Answer(untrusted("does not look like a phonon spectrum"))),
    Case("noise-as-doped-with-basis-refused", lambda t, g: (argv(t, doped=write_csv(t / "d.csv", g.e, _noise(g)),
                                                                  extra=("--basis", str(EX / "basis.npz"))), str(t / "d.csv")),
         Error("does not look like a phonon spectrum")),
    Case("doped-of-another-host-cdte", doped(lambda t, g: write_csv(t / "d.csv", g.e, _other_host("CdTe"))),
         Error("is not a dilute doping of")),
    Case("doped-of-another-host-gap-answered-too-small", doped(lambda t, g: write_csv(t / "d.csv", g.e, _other_host("GaP"))),
         Answer(untrusted("it does not explain the change"))),
    Case("doped-of-another-host-with-basis", lambda t, g: (argv(t, doped=write_csv(t / "d.csv", g.e, _other_host("CdTe")),
                                                                 extra=("--basis", str(EX / "basis.npz"))), str(t / "d.csv")),
         Error("is not a dilute doping of")),
    Case("both-files-of-another-host-inp", pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", g.e, _other_host("InP")), write_csv(t / "d.csv", g.e, _other_host("InP")))),
         Error("is not a pristine spectrum of GaAs")),
    Case("both-files-of-another-host-forced", lambda t, g: (argv(
        t, pristine=write_csv(t / "p.csv", g.e, _other_host("InP")), doped=write_csv(t / "d.csv", g.e, _other_host("InP")),
        extra=("--force",)), None), Answer(untrusted("is not a pristine spectrum of GaAs"))),
    Case("swapped", pristine_and_doped(lambda t, g: (EX / "doped.csv", EX / "pristine.csv")),
         Error(f"{EX / 'doped.csv'} (--pristine) and {EX / 'pristine.csv'} (--doped) look swapped: ")),
    Case("swapped-with-basis", lambda t, g: (argv(t, pristine=EX / "doped.csv", doped=EX / "pristine.csv",
                                                   extra=("--basis", str(EX / "basis.npz"))), str(EX / "doped.csv")),
         Error("look swapped: ")),
    Case("swapped-with-basis-unmix", lambda t, g: (argv(t, pristine=EX / "doped.csv", doped=EX / "pristine.csv",
                                                         extra=("--basis", str(EX / "basis.npz"), "--method", "unmix")),
                                                   str(EX / "doped.csv")),
         Error("holds 2.0 % of its area above the host's band edge 29.1 meV")),
    Case("swapped-forced", lambda t, g: (argv(t, pristine=EX / "doped.csv", doped=EX / "pristine.csv",
                                               extra=("--force",)), None), Answer(untrusted("look swapped"))),
    Case("swapped-noisy", pristine_and_doped(lambda t, g: (write_csv(t / "p.csv", g.e, noisy(g, g.d, 0.05, 12)),
                                                            write_csv(t / "d.csv", g.e, noisy(g, g.p, 0.05, 13)))),
         Error("look swapped")),
    Case("right-way-both-noisy-10pc", pristine_and_doped(lambda t, g: (write_csv(t / "p.csv", g.e, noisy(g, g.p, 0.1, 14)),
                                                                        write_csv(t / "d.csv", g.e, noisy(g, g.d, 0.1, 15)))),
         Answer(lambda r, out: answered(r, out) or not r["checks"]["swap"]["swapped"] or None)),
    Case("doped-energies-offset-3-mev", doped(lambda t, g: write_csv(t / "d.csv", g.e + 3.0, g.d)),
         Error("with its energies shifted by +2.9")),
    Case("doped-one-value-near-the-float-limit", doped(lambda t, g: write_csv(
        t / "d.csv", g.e, np.where(np.arange(g.e.size) == 200, 1e308, g.d))), Error("does not look like a phonon spectrum")),
    Case("both-stretched-x1.3-read-at-scale-1", pristine_and_doped(lambda t, g: (
        write_csv(t / "p.csv", g.e * 1.3, g.p / 1.3), write_csv(t / "d.csv", g.e * 1.3, g.d / 1.3))),
         Answer(untrusted("best with its energies × 0.769 more"))),
    Case("energy-scale-1.35-on-files-at-scale-1", flags("--energy-scale", "1.35"),
         Answer(untrusted("pass --energy-scale auto to fit it (here 1)"))),
    Case("basis-of-another-host", lambda t, g: (
        argv(t, host="Si", candidates="B,As", extra=("--basis", str(EX / "basis.npz"))), str(EX / "basis.npz")),
         Error("the host given is Si: expected a basis of Si (defectnet basis Si --candidates B,As")),
    Case("gaas-files-as-host-si", lambda t, g: (argv(t, host="Si", candidates="Ge,C"), str(EX / "pristine.csv")),
         Error("is far from Si's simulated band edge")),
    Case("gaas-files-as-host-cdte", lambda t, g: (argv(t, host="CdTe", candidates="Zn,Se"), str(EX / "pristine.csv")),
         Error("is not a pristine spectrum of CdTe")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case, tmp_path, gaas):
    run_case(case, tmp_path, gaas)
