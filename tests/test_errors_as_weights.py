"""A measured file's 1σ errors as the weights of the basis' unmixing, and the fit written out (issue 38, part 3).

The files are written here: the example GaAs basis' pristine GPDoS and its signatures of Si, Zn, Be and
C, read on uniform 0.25 meV points up to 150 meV, as an instrument bins them, with an error column.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from defectnet.cli import main
from defectnet.errors import DefectnetError
from defectnet.predict import predict_defects
from defectnet.unmix import SignatureBasis, contributions, unmix

EX = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
SIGMA = 3e-5  # 1σ of each point's density, per meV: the spectra peak near 0.1
E = np.arange(0.125, 150.0, 0.25)


@pytest.fixture(scope="module")
def basis():
    return SignatureBasis.load(EX / "basis.npz")


def spectra(basis, truth, seed=0):
    """(pristine, doped) densities on the points E: the basis' pristine and Σ Δ_k(c_k) of ``truth``, with noise."""
    c = basis.grid.centers
    p = np.interp(E, c, basis.pristine["gpdos"])
    d = p + np.interp(E, c, sum(contributions(basis, truth, kind="gpdos").values()))
    rng = np.random.default_rng(seed)
    return [np.clip(v + SIGMA * rng.standard_normal(E.size), 0.0, None) for v in (p, d)]


def write(path, values, errors=None):
    cols, head = (np.c_[E, values], "energy_meV intensity") if errors is None else \
        (np.c_[E, values, errors], "energy_meV intensity error")
    np.savetxt(path, cols, header=head)
    return path


def run(tmp_path, basis, truth, errors, tag, **kw):
    """The unmixing's answer {element: row} from files with ``errors`` (None: no error column) on both."""
    p, d = spectra(basis, truth)
    pred = predict_defects("GaAs", write(tmp_path / f"d_{tag}.dat", d, errors),
                           pristine=write(tmp_path / f"p_{tag}.dat", p, errors), basis=basis,
                           candidates=list(basis.elements), method="unmix", **kw)
    return pred, {r["element"]: r for r in pred.rows}


def test_uniform_errors_give_the_unweighted_answer_and_their_1sigma_scales_with_them(tmp_path, basis):
    """(a) errors uniform per meV weigh each bin by √(width), as without errors: the same concentrations;
    (c) the 1σ is the least-squares covariance with the given errors (×2 errors, ×2 covariance σ), widened by
    the inflation where χ²/dof exceeds counting noise: here Δ went through the file's 0.25 meV points and back,
    which the errors do not describe."""
    truth = {"Si": 0.02, "Zn": 0.01}
    plain, rows = run(tmp_path, basis, truth, None, "none")
    one, weighted = run(tmp_path, basis, truth, np.full(E.size, SIGMA), "one")
    two, doubled = run(tmp_path, basis, truth, np.full(E.size, 2 * SIGMA), "two")
    factor = {id(p): p.model["sigma_inflation"] for p in (one, two)}
    for el in basis.elements:
        assert weighted[el]["concentration"] == pytest.approx(rows[el]["concentration"], rel=1e-4, abs=1e-8), el
        assert doubled[el]["concentration"] == pytest.approx(weighted[el]["concentration"], rel=1e-4, abs=1e-8)
        assert doubled[el]["uncertainty"] / factor[id(two)] == pytest.approx(
            2 * weighted[el]["uncertainty"] / factor[id(one)], rel=0.01), el
    # the same residual is a 4× smaller χ²/dof with 2× the errors (over the bins with signal, which 2× errors
    # change a little), and needs less widening
    assert two.model["chi2_reduced"] == pytest.approx(one.model["chi2_reduced"] / 4, rel=0.02)
    assert factor[id(one)] > factor[id(two)] >= 1.0
    for el in truth:  # the counting noise alone: far below the residual-based 1σ (which counts the basis' errors)
        assert weighted[el]["uncertainty"] / factor[id(one)] < rows[el]["uncertainty"] / 3
        # widened, ±3σ reaches the truth, which the counting noise alone puts ≥ 5σ away
        assert abs(weighted[el]["concentration"] - truth[el]) < 3 * weighted[el]["uncertainty"]
        assert abs(weighted[el]["concentration"] - truth[el]) > 5 * weighted[el]["uncertainty"] / factor[id(one)]
        assert weighted[el]["detected"] and abs(weighted[el]["concentration"] - truth[el]) < 0.1 * truth[el]
    codes = {m.code for m in one.messages}
    assert {"errors-read", "errors-weighted"} <= codes and not {"errors-read", "errors-weighted"} & \
        {m.code for m in plain.messages}
    assert one.model["residual_fraction"] == pytest.approx(plain.model["residual_fraction"], rel=1e-3)


def test_huge_errors_on_a_local_mode_widen_that_candidate_alone(tmp_path, basis):
    """(b) Be's local mode (50 meV in the basis) measured with 1000× the error: Be's covariance 1σ grows, the
    others' concentrations stay."""
    truth = {"Si": 0.02, "Be": 0.01}
    one, even = run(tmp_path, basis, truth, np.full(E.size, SIGMA), "even")
    other, masked = run(tmp_path, basis, truth, np.where((E > 44) & (E < 58), 1000 * SIGMA, SIGMA), "masked")
    assert masked["Be"]["uncertainty"] / other.model["sigma_inflation"] > \
        2 * even["Be"]["uncertainty"] / one.model["sigma_inflation"]
    assert masked["Be"]["concentration"] == pytest.approx(truth["Be"], rel=0.1)
    for el in ("Si", "Zn", "C"):
        assert masked[el]["concentration"] == pytest.approx(even[el]["concentration"], rel=0.01, abs=2e-5), el
        assert masked[el]["detected"] == even[el]["detected"]


def test_bad_errors_are_one_line_errors_and_half_given_errors_are_not_used(tmp_path, basis):
    p, d = spectra(basis, {"Si": 0.02})
    errors = np.full(E.size, SIGMA)
    errors[100] = 0.0
    with pytest.raises(DefectnetError) as err:
        predict_defects("GaAs", write(tmp_path / "d0.dat", d, errors), pristine=write(tmp_path / "p.dat", p),
                        basis=basis, candidates=["Si", "Zn"], method="unmix")
    assert "error 0 at 25.1 meV; expected every 1σ > 0" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DefectnetError, match=r"errors have shape \(3,\); the basis needs \(640,\)"):
        unmix(basis.pristine["gpdos"], basis.pristine["gpdos"], basis, kind="gpdos", errors=[1.0, 1.0, 1.0])
    with pytest.raises(DefectnetError, match="expected every 1σ of Δ finite and > 0"):
        unmix(basis.pristine["gpdos"], basis.pristine["gpdos"], basis, kind="gpdos", errors=-np.ones(640))
    # the doped file with errors, the pristine without: Δ's error is unknown, the fit is unweighted
    pred = predict_defects("GaAs", write(tmp_path / "d.dat", d, np.full(E.size, SIGMA)),
                           pristine=write(tmp_path / "p.dat", p), basis=basis, candidates=["Si", "Zn"], method="unmix")
    assert "errors-unused" in {m.code for m in pred.messages} and pred.doped.errors is None
    # no measured pristine: the basis' simulated one has no counting noise, the doped file's errors weigh alone
    pred = predict_defects("GaAs", tmp_path / "d.dat", basis=basis, candidates=["Si", "Zn"], method="unmix")
    assert "errors-weighted" in {m.code for m in pred.messages} and not np.any(pred.pristine.errors)
    # the conditioned network reads the spectra unweighted, and says so
    pred = predict_defects("GaAs", tmp_path / "d.dat", pristine=write(tmp_path / "pe.dat", p, np.full(E.size, SIGMA)),
                           basis=basis, candidates=["Si", "Zn"], method="conditioned")
    assert any(m.code == "errors-unused" and "conditioned network" in m.text for m in pred.messages)


def test_fit_csv_json_and_plot_show_the_fit_against_the_measurement(tmp_path, basis, capsys):
    p, d = spectra(basis, {"Si": 0.02, "Zn": 0.01})
    errors = np.full(E.size, SIGMA)
    args = ["predict", "--host", "GaAs", "--doped", str(write(tmp_path / "d.dat", d, errors)), "--pristine",
            str(write(tmp_path / "p.dat", p, errors)), "--basis", str(EX / "basis.npz"), "--candidates", "Si,Zn,Be,C",
            "--method", "unmix"]
    out = tmp_path / "out"
    assert main([*args, "--fit-csv", str(out / "fit.csv"), "--json", str(out / "p.json"),
                 "--plot", str(out / "p.png")]) == 0
    head = (out / "fit.csv").read_text().splitlines()[0].split(",")
    assert head == ["energy_meV", "measured_delta", "fitted_delta", "residual", "Si", "Zn", "Be", "C",
                    "measured_delta_error"]
    table = np.loadtxt(out / "fit.csv", delimiter=",", skiprows=1)
    assert table.shape == (640, 9)
    np.testing.assert_allclose(table[:, 2], table[:, 4:8].sum(axis=1), atol=1e-8)
    np.testing.assert_allclose(table[:, 3], table[:, 1] - table[:, 2], atol=1e-8)
    w = basis.grid.widths
    assert np.sqrt(table[:, 3] ** 2 @ w) < 0.2 * np.sqrt(table[:, 1] ** 2 @ w)  # the fit explains Δ
    assert not table[:, 6].any() and np.abs(table[:, 7]).max() < 0.01 * np.abs(table[:, 1]).max()  # Be, C ~absent
    res = json.loads((out / "p.json").read_text())
    assert res["fit"]["reading"] in ("curve", "total") and set(res["fit"]["contributions"]) == {"Si", "Zn", "Be", "C"}
    assert (out / "p.png").read_bytes()[:4] == b"\x89PNG"
    from defectnet.analysis.result import Prediction

    again = Prediction.from_json((out / "p.json").read_text())
    np.testing.assert_allclose(again.fit_columns()["fitted_delta"], table[:, 2], atol=1e-8)
    # without a basis there is no fit to write: refused in one line before anything runs
    capsys.readouterr()
    assert main(["predict", "--host", "GaAs", "--doped", str(tmp_path / "d.dat"), "--fit-csv", str(out / "x.csv")]) == 2
    assert capsys.readouterr().err.strip() == ("defectnet: error: --fit-csv writes the basis' fit of the signature: "
                                               "it needs a basis (--basis)")


def test_error_inflation_is_one_within_counting_noise_and_grows_with_the_excess():
    """σ × √(1 + max(0, χ²/dof − 1 − 2√(2/dof)) τ SIGMA_SCALE²): 1 while χ²/dof is what counting noise gives."""
    from defectnet.unmix import SIGMA_SCALE, error_inflation

    edge = 1 + 2 * np.sqrt(2 / 200)
    assert error_inflation(0.3, 200, 4.0) == 1.0 and error_inflation(edge - 1e-9, 200, 4.0) == 1.0
    assert error_inflation(edge + 1.0, 200, 4.0) == pytest.approx(np.sqrt(1 + 4 * SIGMA_SCALE ** 2))
    assert error_inflation(10.0, 200, 4.0) > error_inflation(10.0, 200, 1.0) > error_inflation(5.0, 200, 1.0) > 1
    assert error_inflation(1.3, 20, 1.0) == 1.0 < error_inflation(1.3, 2000, 1.0)  # χ² fluctuates more with few bins


def test_counting_noise_with_the_basis_own_curves_is_covered_at_68_percent(basis):
    """Measurements made of the basis' own curves with known counting noise, read with their errors by predict:
    ±1σ covers ~68 % of the true dopants (no model error), and negatives of the noise are kept, not clipped
    (clipped, they biased Δ where the pristine density is ~0: ±1σ covered 0.56–0.59 on the 8 hosts of
    benchmarks/error_calibration.py)."""
    from defectnet.spectrum import Spectrum

    g, p0 = basis.grid, basis.pristine["gpdos"]
    rng = np.random.default_rng(3)
    floor = 1e-3 * p0.max()  # a flat background's counting noise where the density is 0
    z, negative = [], 0
    for _ in range(30):
        truth = dict(zip(("Si", "Zn", "Be", "C"), rng.uniform(0.002, 0.05, 4) * (rng.random(4) < 0.6)))
        d0 = p0 + sum(contributions(basis, truth, kind="gpdos").values())
        spectra = []
        for v in (p0, d0):
            sigma = 0.02 * np.sqrt((np.clip(v, 0.0, None) + floor) / g.widths / g.n_bins)
            spectra.append(Spectrum.on_grid(g, v + sigma * rng.standard_normal(g.n_bins), kind="gpdos", errors=sigma))
        pred = predict_defects("GaAs", spectra[1], pristine=spectra[0], basis=basis, candidates=list(truth),
                               method="unmix")
        negative += int(np.sum(pred.doped.values < 0))
        z += [abs(r["concentration"] - truth[r["element"]]) / r["uncertainty"] for r in pred.rows
              if truth[r["element"]] > 0]
    assert len(z) > 40 and negative > 0
    assert 0.55 < np.mean(np.array(z) <= 1) < 0.82 and np.mean(np.array(z) <= 2) > 0.88


def test_refine_reads_the_errors_as_weights(tmp_path, basis):
    """--refine with errors, as unmix: uniform errors per meV give the unweighted refinement and weigh the
    covariance 1σ; 1000× the error over Be's local mode (44–58 meV) widens Be's covariance 1σ (measured ×2.1), Si's
    barely (×1.2), and Si moves less than its reported 1σ."""
    truth = {"Si": 0.02, "Be": 0.01}
    plain, rows = run(tmp_path, basis, truth, None, "none", refine=1)
    one, even = run(tmp_path, basis, truth, np.full(E.size, SIGMA), "even", refine=1)
    other, masked = run(tmp_path, basis, truth, np.where((E > 44) & (E < 58), 1000 * SIGMA, SIGMA), "masked", refine=1)
    for el in basis.elements:
        assert even[el]["concentration"] == pytest.approx(rows[el]["concentration"], rel=1e-4, abs=1e-8), el
    assert {"errors-read", "errors-weighted", "refined"} <= {m.code for m in one.messages}
    assert "errors-unused" not in {m.code for m in one.messages} | {m.code for m in other.messages}
    assert one.model["chi2_reduced"] > 1 and one.model["sigma_inflation"] >= 1  # the basis is not the synthesis

    def covariance(pred, row):
        return row["uncertainty"] / pred.model["sigma_inflation"]

    assert covariance(other, masked["Be"]) > 1.5 * covariance(one, even["Be"])
    assert covariance(other, masked["Si"]) < 1.5 * covariance(one, even["Si"])
    assert abs(masked["Si"]["concentration"] - even["Si"]["concentration"]) < masked["Si"]["uncertainty"]
    assert not masked["Zn"]["detected"] and not masked["C"]["detected"]
