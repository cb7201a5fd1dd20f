"""Hostile arguments: options that contradict each other, and candidates that are no dopant of the host."""

from __future__ import annotations

import pytest

from .common import EX, Answer, Case, Error, argv, flags, readme_answer, run_case


ARGUMENTS = [
    Case("unit-unknown", flags("--unit", "furlongs"), Error("unknown energy unit")),
    Case("energy-scale-out-of-range", flags("--energy-scale", "5"), Error("energy_scale must lie in [0.5, 2]")),
    Case("recommend-negative", flags("--recommend", "-1"), Error("n_recommend must be ≥ 0")),
    Case("refine-without-basis", flags("--refine", "2"), Error("needs a basis")),
    Case("method-without-basis", flags("--method", "unmix"), Error("chooses how a basis is read: it needs a basis")),
    Case("basis-only-against-method", flags("--basis", str(EX / "basis.npz"), "--basis-only", "--method", "merge"),
         Error("--basis-only is --method unmix, which contradicts --method merge")),
    Case("stretch-where-the-conditioned-network-answers",
         flags("--basis", str(EX / "basis.npz"), "--method", "conditioned", "--stretch", "0.2"),
         Error("--stretch moves the local modes of an unmixing, and here the conditioned network answers; "
               "add --method unmix")),
    Case("kind-the-model-does-not-read", flags("--kind", "total"),
         Error("the model reads gpdos spectra but the input is total; expected --kind gpdos")),
]


def _cands(text, *basis):
    def build(tmp, g):
        return argv(tmp, candidates=text, extra=("--basis", str(basis[0](tmp))) if basis else ()), None
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

CASES = ARGUMENTS + CANDIDATE_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case, tmp_path, gaas):
    run_case(case, tmp_path, gaas)
