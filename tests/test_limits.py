"""Detection limits (defectnet.limits, ``defectnet limits``) on the committed GaAs basis (Si, Zn, Be, C)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from defectnet.errors import DefectnetError
from defectnet.limits import (PREDICTORS, DetectionLimits, LimitsConfig, broadening_kernel, counting_noise,
                              detection_limits)
from defectnet.limits.search import _search
from defectnet.resolution import get_resolution
from defectnet.unmix import SignatureBasis

BASIS = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn" / "basis.npz"
#: Small and fast: 9 concentrations from 0.1 to 25 at.% (×2 per step), 10 measurements each.
FAST = dict(n_concentrations=9, measurements=10, seed=3)


@pytest.fixture(scope="module")
def gaas():
    return SignatureBasis.load(BASIS)


@pytest.fixture(scope="module")
def by_noise(gaas):
    """Limits of Be (a local mode at 50 meV, above GaAs's bands at 29 meV) and Zn (mass 65 on Ga 70: its
    signature lies inside the bands) at three noise levels, the same seed."""
    return {noise: detection_limits(gaas, LimitsConfig(candidates=("Be", "Zn"), noise=noise, **FAST))
            for noise in (0.02, 0.05, 0.15)}


def test_a_larger_noise_never_gives_a_lower_limit(by_noise):
    for el in ("Be", "Zn"):
        limits = [by_noise[n][el].limit for n in sorted(by_noise)]
        assert all(x is not None for x in limits), limits
        assert limits == sorted(limits), (el, limits)
        assert limits[-1] > limits[0], (el, limits)  # 7.5x the noise costs something


def test_a_local_mode_is_seen_at_a_lower_concentration_than_a_signature_inside_the_bands(by_noise):
    for result in by_noise.values():
        assert result["Be"].limit < result["Zn"].limit, result.table()
    low = by_noise[0.02]
    assert 0.001 < low["Be"].limit <= 0.01  # presence is P(c ≥ 0.1 at.%): nothing at or below 0.1 at.%
    assert low["Be"].false_alarm == 0 and low["Zn"].false_alarm == 0


def test_the_limit_is_where_the_rate_reaches_90_percent(by_noise):
    cfg = by_noise[0.05].config
    for lim in by_noise[0.05].limits:
        rates = dict(zip(lim.concentrations, lim.rates))
        assert rates[lim.limit] >= cfg.min_rate
        assert all(r < cfg.min_rate for c, r in rates.items() if c < lim.limit)
        assert lim.rate_below() is not None and lim.rate_below() < cfg.min_rate
        assert list(lim.concentrations) == sorted(lim.concentrations)
        # the predictor reads roughly what was there, where it detects it
        for c, read in zip(lim.concentrations, lim.read):
            if c >= lim.limit:
                assert read == pytest.approx(c, rel=0.35), (lim.element, c, read)


def test_the_predictor_reads_against_a_basis_at_the_instruments_resolution(gaas):
    """On a coarse direct-geometry instrument (MARI, Ei = 500 meV: ~13 meV FWHM at 100 meV) Be's local mode is
    found at a fraction of an at.% against a basis broadened alike; against the 1 meV basis as given the misfit
    swamps every signature and nothing is found up to 25 at.%."""
    common = dict(candidates=("Be",), resolution="mari:500", noise=0.02, **FAST)
    matched = detection_limits(gaas, LimitsConfig(**common))
    as_given = detection_limits(gaas, LimitsConfig(match_basis=False, **common))
    assert matched["Be"].limit is not None and matched["Be"].limit < 0.01, matched.table()
    assert as_given["Be"].limit is None, as_given.table()
    assert "broadened alike" in matched.method["resolution"]["text"]


def test_twin_signatures_are_noted():
    """Sb and Te on As in CeAs have signatures with cosine 0.998: the output says the predictor splits them."""
    basis = BASIS.parents[2] / "datasets" / "reference" / "bases" / "CeAs-rocksalt.npz"
    res = detection_limits(basis, LimitsConfig(candidates=("Sb", "Te", "Si"), n_concentrations=2, measurements=2))
    assert len(res.notes) == 1 and res.notes[0].startswith("Sb/Te: signatures too alike"), res.notes
    assert "note: Sb/Te" in res.table()


def test_a_bisection_stops_measuring_once_the_verdict_is_certain_and_finds_the_same_limit(gaas, monkeypatch):
    import defectnet.limits.search as search

    config = LimitsConfig(candidates=("Si",), noise=0.05, n_concentrations=9, measurements=20, seed=1)
    quick = detection_limits(gaas, config)
    monkeypatch.setattr(search, "SEQUENTIAL_CHUNK", 10_000)  # every measurement at every concentration
    full = detection_limits(gaas, config)
    assert quick["Si"].limit == full["Si"].limit and quick["Si"].concentrations == full["Si"].concentrations
    assert set(full["Si"].measured) == {20} and min(quick["Si"].measured) < 20
    for rate, n in zip(quick["Si"].rates, quick["Si"].measured):
        assert (rate >= 0.9) == (round(rate * n) >= 18)  # a pass is 18 of 20, whenever the measuring stopped


def test_bisection_and_scan_find_the_same_point_of_a_rising_rate():
    for first in range(0, 10):
        seen = []

        def passes(i):
            seen.append(i)
            return i >= first

        assert _search(passes, 9, "bisect") == (first if first < 9 else None)
        assert len(set(seen)) <= 5  # log2(9) + 2
        assert _search(lambda i: i >= first, 9, "scan") == (first if first < 9 else None)
    # scan: a lone pass below a failure is not the limit
    assert _search(lambda i: i in (1, 5, 6, 7, 8), 9, "scan") == 5


def test_counting_noise_is_poisson_statistics_of_bins_over_noise_squared_counts(gaas):
    grid = gaas.grid
    p = gaas.pristine["gpdos"]
    z = np.random.default_rng(0).standard_normal((4000, grid.n_bins))
    noise = 0.05
    noisy = counting_noise(p, grid, noise, z)
    np.testing.assert_allclose(noisy @ grid.widths, 1.0, rtol=1e-12)  # unit area
    q = p * grid.widths
    counts = grid.n_bins / noise ** 2
    busy = q > 5 / counts  # bins where clipping at 0 does not matter
    var = (noisy * grid.widths)[:, busy].var(axis=0)
    np.testing.assert_allclose(var / (q[busy] / counts), 1.0, atol=0.15)  # Var(share) = share / N


def test_broadening_adds_what_the_instrument_has_beyond_the_basis_own_width(gaas):
    """The basis is broadened 1 meV FWHM; for a 5 meV instrument the kernel adds √(5² − 1²) meV."""
    e = gaas.grid.centers
    kernel = broadening_kernel(gaas, get_resolution("gaussian:5"))
    np.testing.assert_allclose(kernel.sum(axis=1), 1.0, atol=1e-12)  # area kept
    i = int(np.argmin(np.abs(e - 100.0)))
    row = kernel[i]
    mean = row @ e
    fwhm = np.sqrt(row @ (e - mean) ** 2) * 2.3548
    assert fwhm == pytest.approx(np.sqrt(5 ** 2 - 1 ** 2), rel=0.05)
    finer = broadening_kernel(gaas, get_resolution("gaussian:0.5"))  # finer than the basis: nothing added
    np.testing.assert_allclose(finer, np.eye(e.size), atol=1e-9)


def test_a_predictor_plugs_in_by_name(gaas, monkeypatch):
    """The predictor is an adapter: presence (n, K) from pristine/doped (n, B); one that always says 'present'
    detects at the lowest concentration and raises a false alarm every time."""
    calls = []

    def always(pristine, doped, basis, candidates, *, kind):
        calls.append((pristine.shape, doped.shape, tuple(candidates), kind))
        n = len(pristine)
        return {"presence": np.ones((n, len(candidates))), "concentration": np.full((n, len(candidates)), 0.01)}

    monkeypatch.setitem(PREDICTORS, "always", always)
    res = detection_limits(gaas, LimitsConfig(candidates=("C",), predictor="always", background=(("Zn", 0.01),),
                                              n_concentrations=5, measurements=4))
    assert res["C"].limit == pytest.approx(0.001) and res["C"].below_range and res["C"].false_alarm == 1.0
    assert calls[0] == ((4, gaas.grid.n_bins), (4, gaas.grid.n_bins), ("C", "Zn"), "gpdos")  # the background told too
    assert "≤ 0.1" in res.table()


def test_predict_itself_as_predictor_agrees_with_unmixing_on_a_clear_local_mode(gaas):
    """``predictor="predict"`` runs predict_defects per measurement (GaAs is a training host of the shipped model:
    the model's answer is merged in); C's local mode is found at the same concentration as by unmixing alone."""
    common = dict(candidates=("C",), noise=0.05, n_concentrations=3, measurements=2)
    by = {name: detection_limits(gaas, LimitsConfig(predictor=name, **common)) for name in ("unmix", "predict")}
    assert by["predict"]["C"].limit == by["unmix"]["C"].limit < 0.02
    assert by["predict"]["C"].false_alarm == 0.0
    assert "predict_defects" in by["predict"].method["predictor"]["text"]


def test_the_conditioned_network_as_predictor_reads_all_measurements_at_once(gaas):
    """``predictor="conditioned"`` (predict --basis's default answer): one batch; Δ within its noise reads nothing;
    C's local mode is found where unmixing finds it; a PDoS plan is refused in one line."""
    p = gaas.pristine["gpdos"]
    d = p + gaas.curves["gpdos"][gaas.elements.index("C"), 1]  # C at ~5 at.%
    out = PREDICTORS["conditioned"](np.stack([p, p]), np.stack([d, p]), gaas, ["Si", "C"], kind="gpdos")
    assert out["presence"].shape == out["concentration"].shape == (2, 2)
    assert out["presence"][0, 1] > 0.95 and out["concentration"][0, 1] > 0.02
    assert not out["presence"][1].any() and not out["concentration"][1].any()  # no signal: nothing read
    common = dict(candidates=("C",), noise=0.05, n_concentrations=3, measurements=2)
    by = {name: detection_limits(gaas, LimitsConfig(predictor=name, **common)) for name in ("unmix", "conditioned")}
    assert by["conditioned"]["C"].limit == by["unmix"]["C"].limit < 0.02
    assert "conditioned network" in by["conditioned"].method["predictor"]["text"]
    with pytest.raises(DefectnetError, match="reads GPDoS"):
        PREDICTORS["conditioned"](np.stack([p]), np.stack([d]), gaas, ["C"], kind="pdos")


def test_bad_input_is_a_one_line_error(gaas):
    for kw, fragment in [
        (dict(resolution="hubble"), "unknown resolution"),
        (dict(resolution="vision"), "not available"),
        (dict(noise=0.0), "noise must be a positive"),
        (dict(noise=-0.1), "noise must be a positive"),
        (dict(noise=float("nan")), "noise must be a positive"),
        (dict(engine="magic"), "unknown engine"),
        (dict(c_min=0.3, c_max=0.2), "concentration range"),
        (dict(background=(("Zn", 2.0),)), "background fractions"),
    ]:
        with pytest.raises(DefectnetError, match=fragment) as err:
            LimitsConfig(**kw)
        assert "\n" not in str(err.value)
    for kw, fragment in [
        (dict(candidates=("B",)), "not in the basis of GaAs"),
        (dict(candidates=("Zn",), background=(("Zn", 0.01),)), "background mix and among the candidates"),
    ]:
        with pytest.raises(DefectnetError, match=fragment):
            detection_limits(gaas, LimitsConfig(**kw))
    with pytest.raises(DefectnetError, match="not of Si"):
        detection_limits(gaas, LimitsConfig(), host="Si")


def test_result_round_trips_and_states_how_it_was_computed(gaas, tmp_path):
    res = detection_limits(gaas, LimitsConfig(candidates=("C",), n_concentrations=5, measurements=6, noise=0.1))
    back = DetectionLimits.from_dict(json.loads(res.write_json(tmp_path / "l.json").read_text()))
    assert back.limits == res.limits and back.config == res.config and back.notes == res.notes
    assert LimitsConfig.from_dict(res.config.to_dict()) == res.config
    table = res.table()
    for fragment in ("forward model: the basis' own simulated curves", "predictor: defectnet.unmix.unmix",
                     "noise 0.1", "counts over the grid", "resolution tosca"):
        assert fragment in table, table
    d = res.to_dict()
    assert d["units"]["limit"] == "atomic fraction" and d["provenance"]["commit"] is not None
    assert d["method"]["noise"]["counts"] == pytest.approx(gaas.grid.n_bins / 0.01)
    assert res.plot(tmp_path / "l.png").stat().st_size > 10_000
    with pytest.raises(DefectnetError, match="unknown limits config keys"):
        LimitsConfig.from_dict({**res.config.to_dict(), "colour": "red"})


def test_synthesis_engine_places_whole_atoms(cu_basis):
    """Fresh placements of the basis' patches (EMT Cu, 108 atoms): realised concentrations are whole atoms."""
    res = detection_limits(cu_basis, LimitsConfig(candidates=("Al",), engine="synthesis", placements=2, noise=0.05,
                                                  n_concentrations=4, c_min=0.01, c_max=0.1, measurements=6,
                                                  resolution="gaussian:2"))
    lim = res["Al"]
    np.testing.assert_allclose(np.asarray(lim.realised) * 108, np.round(np.asarray(lim.realised) * 108), atol=1e-9)
    assert lim.realised[0] == pytest.approx(1 / 108)  # 0.01 × 108 = 1.08 atoms
    assert "fresh placements" in res.method["engine"]["text"]


def test_cli_writes_table_json_and_plot(tmp_path, capsys):
    from defectnet.cli import main

    code = main(["limits", "GaAs", "--basis", str(BASIS), "--candidates", "C,Si@Ga", "--noise", "0.05",
                 "--points", "5", "--measurements", "6", "--json", str(tmp_path / "l.json"),
                 "--plot", str(tmp_path / "l.png"), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "limit at.%" in out and "forward model" in out
    data = json.loads((tmp_path / "l.json").read_text())
    assert [r["element"] for r in data["limits"]] == ["C", "Si"]
    assert data["config"]["noise"] == 0.05 and data["provenance"]["command"]
    assert (tmp_path / "l.png").stat().st_size > 10_000


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    from defectnet.cli import main

    no_synthesis = BASIS.parents[2] / "datasets" / "reference" / "bases" / "AgCl-zincblende.npz"
    for args, fragment in [
        (["GaAs", "--basis", str(BASIS), "--candidates", "B"], "not in the basis"),
        (["GaAs", "--basis", str(BASIS), "--noise", "-1"], "noise must be a positive"),
        (["Si", "--basis", str(BASIS)], "the basis is of GaAs, not of Si"),
        (["GaAs", "--basis", str(tmp_path)], "is a directory"),
        (["AgCl-zincblende", "--basis", str(no_synthesis), "--engine", "synthesis"], "holds no host and patches"),
    ]:
        assert main(["limits", *args, "--quiet"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], lines
    for args, fragment in [(["--resolution", "nowhere"], "unknown resolution"), (["--noise", "0"], "noise must be a")]:
        proc = subprocess.run([sys.executable, "-m", "defectnet.cli", "limits", "GaAs", "--basis", str(BASIS), *args,
                               "--quiet"], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert fragment in lines[0]
