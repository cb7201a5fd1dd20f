"""Signature basis and unmixing on fcc Cu under EMT (108-atom cells, nearest-neighbour patches)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from defectnet.doping import DopantSpec
from defectnet.errors import DefectnetError
from defectnet.phonons.forceconstants import TierSettings
from defectnet.simulate import SimulationConfig, simulate_spectra
from defectnet.unmix import BasisConfig, SignatureBasis, band_edge_mev, signature_basis, stretched, unmix


@pytest.fixture
def basis(cu_basis):  # tests/conftest.py: Ag, Ni, Pd, Al in 108-atom Cu
    return cu_basis


def test_basis_rows_conserve_area(basis):
    w = basis.grid.widths
    for kind in ("pdos", "gpdos"):
        s = basis.signatures[kind]
        assert s.shape == (4, basis.grid.n_bins)
        # unit-area spectra: a signature moves weight, it neither adds nor removes it
        np.testing.assert_allclose(s @ w, 0.0, atol=1e-6 * np.abs(s).sum(axis=1).max())
    np.testing.assert_allclose(basis.realised, [[2 / 108, 8 / 108]] * 4)


def test_mass_defect_signature_obeys_the_sum_rule(cu, cu_sim):
    """Mass tier: <E^2> ∝ Tr D = Σ Φ_ii / m_i, so ∫E² S dE = (m_Cu / m_dopant − 1) <E²>_pristine."""
    from defectnet.elements import mass_amu

    b = signature_basis(cu.atoms, ["Ag", "Al"], BasisConfig(concentrations=(4 / 108,),
                        simulation=SimulationConfig(tier="mass", potential="emt", supercell_atoms=108, host=cu_sim.host)),
                        pristine_host=cu, progress=False)
    e2 = b.grid.widths * b.grid.centers ** 2
    for el, s in zip(b.elements, b.signatures["pdos"]):
        expected = (mass_amu("Cu") / mass_amu(el) - 1) * (b.pristine["pdos"] @ e2)
        assert s @ e2 == pytest.approx(expected, rel=0.03), el


def test_unmix_recovers_a_mixture_the_basis_never_saw(cu, cu_sim, basis):
    truth = {"Ag": 6 / 108, "Al": 4 / 108}
    res = simulate_spectra(cu.atoms, [DopantSpec(el, None, x) for el, x in truth.items()], replace(cu_sim, seed=7),
                           pristine_host=cu, progress=False)  # other placements than the basis' (seed 100)
    for kind, (p, d) in {"pdos": (res.pristine, res.doped), "gpdos": (res.pristine_gpdos, res.doped_gpdos)}.items():
        out = unmix(p.values, d.values, basis, kind=kind, candidates=["Ag", "Ni", "Al"])
        for el, x in truth.items():
            assert out[el]["concentration"] == pytest.approx(x, rel=0.4), (kind, el, out)
            assert 0 < out[el]["uncertainty"] < x
            assert out[el]["presence"] > 0.9
        assert out["Ni"]["concentration"] < 0.005 and out["Ni"]["presence"] < 0.5, (kind, out)  # the distractor
        assert out.fit["residual_fraction"] < 0.3
    assert set(out) == {"Ag", "Ni", "Al"}


def test_unmix_arrays_is_unmix_per_spectrum(basis):
    from defectnet.unmix import unmix_arrays

    p = basis.pristine["gpdos"]
    vocab = ["Al", "Ag", "Pd", "Ni", "Zn"]
    doped = np.stack([p + 0.02 * basis.signatures["gpdos"][0], p + 0.04 * basis.signatures["gpdos"][1]])
    cand = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 0, 0]], bool)
    out = unmix_arrays(np.stack([p, p]), doped, cand, vocab, basis, kind="gpdos")
    for r in range(2):
        one = unmix(p, doped[r], basis, kind="gpdos", candidates=[vocab[j] for j in np.flatnonzero(cand[r])])
        for j in np.flatnonzero(cand[r]):
            assert out["concentration"][r, j] == one[vocab[j]]["concentration"]
            assert out["sigma"][r, j] == one[vocab[j]]["uncertainty"]
            assert out["presence"][r, j] == one[vocab[j]]["presence"]
        assert out["residual_fraction"][r] == one.fit["residual_fraction"]
    assert not out["concentration"][~cand].any() and not out["presence"][~cand].any()


def test_similarity_names_the_twins(basis):
    sim = basis.similarity()
    np.testing.assert_allclose(np.diag(sim), 1.0)
    np.testing.assert_allclose(sim, sim.T)
    i, j = np.unravel_index(np.argmax(sim - 2 * np.eye(4)), sim.shape)
    assert {basis.elements[i], basis.elements[j]} == {"Ag", "Pd"}  # 108 and 106 amu, both 4d
    pairs = basis.alike()
    assert len(pairs) == 6 and {pairs[0][0], pairs[0][1]} == {"Ag", "Pd"} and pairs[0][2] == pytest.approx(sim[i, j])
    assert [c for *_, c in pairs] == sorted((c for *_, c in pairs), reverse=True)
    assert all("Pd" not in (a, b) for a, b, _ in basis.alike(among=["Ag", "Ni", "Al"]))


def test_basis_round_trip_and_bad_input(cu, cu_sim, basis, tmp_path):
    back = SignatureBasis.load(basis.save(tmp_path / "cu.npz"))
    assert back.elements == basis.elements and back.grid.grid_id == basis.grid.grid_id
    for kind in ("pdos", "gpdos"):
        np.testing.assert_array_equal(back.signatures[kind], basis.signatures[kind])
    p = basis.pristine["pdos"]
    with pytest.raises(DefectnetError, match="not in the basis"):
        unmix(p, p, basis, candidates=["Zn"])
    with pytest.raises(DefectnetError, match="shapes"):
        unmix(p[:-1], p[:-1], basis)
    with pytest.raises(DefectnetError, match="atomic fractions"):
        BasisConfig(concentrations=(5.0,))
    with pytest.raises(DefectnetError, match="same dopant count"):  # 1 and 1.2 at.% of 108 atoms: 1 atom each
        signature_basis(cu.atoms, ["Ag"], BasisConfig(concentrations=(0.01, 0.012), simulation=cu_sim),
                        pristine_host=cu, progress=False)
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(DefectnetError, match="not a signature basis"):
        SignatureBasis.load(tmp_path / "bad.npz")


def test_cli_basis_then_predict_by_unmixing(tmp_path, capsys):
    """What a user runs: simulate a host's basis, then predict a sample with it instead of the model."""
    import json

    from ase.io import write

    from defectnet.cli import main

    host = tmp_path / "Cu.vasp"
    write(host, bulk("Cu", "fcc", a=3.6), format="vasp")
    common = ["--potential", "emt", "--supercell-atoms", "108", "--cutoff", "2.6", "--quiet"]
    assert main(["basis", str(host), "--candidates", "Ag,Al,Ni", "--concentrations", "0.02,0.07",
                 "--out", str(tmp_path / "cu.npz"), *common]) == 0
    assert "most alike" in capsys.readouterr().out
    assert main(["simulate", str(host), "--dopants", "Ag:0.05", "--tier", "patch", "--seed", "5",
                 "--out", str(tmp_path / "run"), *common]) == 0
    assert main(["predict", "--host", str(host), "--doped", str(tmp_path / "run" / "doped.csv"),
                 "--pristine", str(tmp_path / "run" / "pristine.csv"), "--basis", str(tmp_path / "cu.npz"),
                 "--truth", str(tmp_path / "run" / "meta.json"), "--json", str(tmp_path / "p.json")]) == 0
    out = json.loads((tmp_path / "p.json").read_text())
    rows = {r["element"]: r for r in out["candidates"]}
    assert set(rows) == {"Ag", "Al", "Ni"}  # no --candidates: the basis' own
    assert rows["Ag"]["detected"] and rows["Ag"]["concentration"] == pytest.approx(out["truth"]["Ag"], rel=0.3)
    # absent: at most a trace (this 108-atom toy cell leaves Al at ~0.2 at.%, "detected")
    assert rows["Al"]["concentration"] < 0.005 and rows["Ni"]["concentration"] < 0.005
    assert "analysis by synthesis" in capsys.readouterr().out
    # a mix at 15 %: unmixing reads it low, --refine synthesises it and corrects
    assert main(["simulate", str(host), "--dopants", "Ag:0.09,Al:0.06", "--tier", "patch", "--seed", "6",
                 "--out", str(tmp_path / "mix"), *common]) == 0
    err = {}
    for n in (0, 3):
        assert main(["predict", "--host", str(host), "--doped", str(tmp_path / "mix" / "doped.csv"),
                     "--pristine", str(tmp_path / "mix" / "pristine.csv"), "--basis", str(tmp_path / "cu.npz"),
                     "--refine", str(n), "--truth", str(tmp_path / "mix" / "meta.json"),
                     "--json", str(tmp_path / f"mix{n}.json")]) == 0
        out = json.loads((tmp_path / f"mix{n}.json").read_text())
        rows = {r["element"]: r["concentration"] for r in out["candidates"]}
        err[n] = sum(abs(rows[el] - out["truth"].get(el, 0.0)) for el in rows)
    assert "refined by synthesising the mix 3 times" in capsys.readouterr().out
    assert err[3] < err[0], err
    assert main(["predict", "--host", str(host), "--doped", str(tmp_path / "mix" / "doped.csv"), "--refine", "2"]) != 0
    assert "needs a basis" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: a bad --concentrations list
        main(["basis", str(host), "--candidates", "Ag", "--concentrations", "1%,x", "--out", "b.npz"])


def test_basis_resumes_from_its_checkpoint_and_reports_unstable_candidates(cu, cu_sim, tmp_path, monkeypatch):
    from defectnet.host import Host

    # Unrelaxed, C sits on a saddle point of Cu (EMT): it has no signature, Ag has.
    sim = replace(cu_sim, tier_settings=TierSettings(cutoff_ang=2.6, relax=False))
    config = BasisConfig(concentrations=(2 / 108, 4 / 108), simulation=sim)
    cells = tmp_path / "cu.cells.npz"
    first = signature_basis(cu.atoms, ["Ag", "C"], config, pristine_host=cu, checkpoint=cells, progress=False)
    assert first.elements == ("Ag",) and "C on site 0" in first.failed["C"]
    assert first.curves["pdos"].shape == (1, 2, first.grid.n_bins)

    def no_more(*args, **kwargs):
        raise AssertionError("a finished cell was computed again")

    monkeypatch.setattr(Host, "place", no_more)  # every doped cell of a basis is placed by Host.place
    again = signature_basis(cu.atoms, ["Ag", "C"], config, pristine_host=cu, checkpoint=cells, progress=False)
    np.testing.assert_array_equal(again.signatures["gpdos"], first.signatures["gpdos"])
    assert again.failed == first.failed
    p = first.pristine["pdos"]
    out = unmix(p, p + first.curves["pdos"][0, 1], first, candidates=["Ag", "C"])  # a basis cell itself
    assert out["Ag"]["concentration"] == pytest.approx(first.realised[0, 1], rel=1e-4)
    assert out["Ag"]["uncertainty"] < 1e-3 * first.realised[0, 1] and out.fit["residual_fraction"] < 1e-3
    assert out["C"] == {"concentration": 0.0, "uncertainty": 0.0, "presence": 0.0} and "C" in out.fit["unstable"]


def test_signature_curve_is_piecewise_linear_through_the_origin():
    from defectnet.unmix import curve_and_slope

    x = np.array([0.01, 0.05, 0.15])
    curve = np.array([[1.0, 0.0], [3.0, 1.0], [4.0, 5.0]])  # (n, B): sublinear in bin 0, superlinear in bin 1
    for k, xk in enumerate(x):
        np.testing.assert_allclose(curve_and_slope(x, curve, xk)[0], curve[k])
    v, g = curve_and_slope(x, curve, 0.005)
    np.testing.assert_allclose(v, [0.5, 0.0]) and np.testing.assert_allclose(g, [100.0, 0.0])
    np.testing.assert_allclose(curve_and_slope(x, curve, 0.03)[0], [2.0, 0.5])
    v, g = curve_and_slope(x, curve, 0.25)  # beyond the last cell: the last segment goes on
    np.testing.assert_allclose(g, [10.0, 40.0]) and np.testing.assert_allclose(v, [5.0, 9.0])


def test_combine_weights_by_uncertainty_and_widens_for_disagreement():
    from defectnet.unmix import combine

    def est(c, s, p):
        return {"concentration": c, "uncertainty": s, "presence": p}

    same = combine({"Ag": est(0.02, 0.004, 0.9)}, {"Ag": est(0.02, 0.004, 0.9), "Ni": est(0.01, 0.002, 0.8)})
    assert set(same) == {"Ag"}  # only candidates both hold
    assert same["Ag"]["concentration"] == pytest.approx(0.02)
    assert same["Ag"]["uncertainty"] == pytest.approx(0.004 / np.sqrt(2))  # two agreeing estimates: √2 sharper
    assert same["Ag"]["presence"] == pytest.approx(81 / 82)  # odds 9 × 9
    # the sharper estimate weighs 4× more; half the disagreement widens the 1σ
    m = combine({"Ag": est(0.01, 0.002, 0.9)}, {"Ag": est(0.03, 0.004, 0.9)})["Ag"]
    assert m["concentration"] == pytest.approx((4 * 0.01 + 0.03) / 5)
    assert m["uncertainty"] == pytest.approx(np.sqrt(1 / (1 / 0.002**2 + 1 / 0.004**2) + 0.01**2))
    # evidence of absence wins: presence ≤ ½ reports 0; a σ of 0 is floored at the detection threshold
    gone = combine({"Ag": est(0.0, 0.0, 0.05)}, {"Ag": est(0.004, 0.002, 0.6)})["Ag"]
    assert gone["presence"] < 0.5 and gone["concentration"] == 0.0 and gone["uncertainty"] > 0.001


# --- signatures that may move (issue 39): the bundled GaAs example and its 7net-0 basis ---------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"


@pytest.fixture(scope="module")
def gaas():
    from defectnet.io import read_spectrum

    b = SignatureBasis.load(EXAMPLE / "basis.npz")
    p, d = (read_spectrum(EXAMPLE / f"{n}.csv", column="gpdos").values for n in ("pristine", "doped"))
    return b, p, d, band_edge_mev(b.pristine["gpdos"], b.grid)


def test_band_edge_ignores_trailing_zeros_and_a_weak_tail(gaas):
    b, p, _, edge = gaas
    assert 25 < edge < 33  # GaAs's bands end near 29 meV with 7net-0 (LVM benchmark)
    tail = p.copy()
    far = b.grid.centers > 150
    tail[far] = 1e-6 * p.max()  # a flat background holding < 0.5 % of the area
    assert tail[far] @ b.grid.widths[far] < 0.005 * (tail @ b.grid.widths)
    assert band_edge_mev(tail, b.grid) == pytest.approx(edge, abs=1.0)
    with pytest.raises(DefectnetError, match="no positive area"):
        band_edge_mev(np.zeros_like(p), b.grid)


@pytest.mark.parametrize("scale", [0.85, 1.17])
def test_stretched_moves_local_modes_keeps_bands_and_area(gaas, scale):
    b, p, d, edge = gaas
    delta = d - p
    moved = stretched(delta, b.grid, edge, scale)
    e, w = b.grid.centers, b.grid.widths
    below = e <= edge
    np.testing.assert_array_equal(moved[below & (e < scale * edge)], delta[below & (e < scale * edge)])
    above = np.where(e > edge, delta, 0.0)
    assert (moved - delta + above) @ w == pytest.approx(above @ w, rel=0.02)  # the moved part keeps its area
    peak = e[np.argmax(np.where(e > edge, delta, 0))]  # Si's local mode, ~35 meV
    new_peak = e[np.argmax(np.where(e > max(edge, scale * edge), moved, 0))]
    assert new_peak == pytest.approx(scale * peak, rel=0.03)


def test_unmix_finds_a_moved_local_mode_and_reports_where(gaas):
    """Si's mode moved ×1.17 (as a second potential puts it, 35 → 41 meV): the basis as
    simulated misreads the mix; with an energy freedom of ±20 % the amounts come back."""
    b, p, d, edge = gaas
    plain = unmix(p, d, b, kind="gpdos")
    shifted = p + stretched(d - p, b.grid, edge, 1.17)
    rigid = unmix(p, shifted, b, kind="gpdos")
    free = unmix(p, shifted, b, kind="gpdos", stretch=0.2)
    assert rigid["Si"]["concentration"] < 0.6 * plain["Si"]["concentration"]
    assert free["Si"]["concentration"] == pytest.approx(plain["Si"]["concentration"], rel=0.1)
    assert free.fit["residual_fraction"] < 0.5 * rigid.fit["residual_fraction"]
    mode = free.fit["modes"]["Si"]
    assert mode["scale"] == pytest.approx(1.17, abs=0.02)
    assert mode["fitted_mev"] == pytest.approx(1.17 * mode["basis_mev"], rel=0.03)
    assert "Zn" not in free.fit["modes"]  # no local mode above GaAs's bands: nothing to move
    for el in ("Be", "C"):  # absent candidates stay absent
        assert free[el]["concentration"] < 0.001


def test_unmix_refuses_a_stretch_outside_0_1(gaas):
    b, p, d, _ = gaas
    for bad in (-0.1, 1.0):
        with pytest.raises(DefectnetError, match="stretch"):
            unmix(p, d, b, kind="gpdos", stretch=bad)


def test_basis_files_leave_out_the_checkpoints_of_bases_being_built(tmp_path):
    from defectnet.unmix import basis_files

    for name in ("GaAs.npz", ".InAs.cells.npz", "Si.npz", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in basis_files(tmp_path)] == ["GaAs.npz", "Si.npz"]


def test_a_measured_local_mode_moves_the_basis_and_the_mix_reads_right(gaas):
    """Si's mode where a second potential puts it (×1.17): given that energy (--lvm), the moved
    basis reads the amounts as the basis did on its own potential's spectrum, and says what it moved."""
    from defectnet.unmix import calibrated

    b, p, d, edge = gaas
    plain = unmix(p, d, b, kind="gpdos")
    shifted = p + stretched(d - p, b.grid, edge, 1.17)
    peak = b.grid.centers[np.argmax(np.where(b.grid.centers > band_edge_mev(b.pristine["pdos"], b.grid),
                                             b.signatures["pdos"][b.elements.index("Si")], 0))]
    moved, notes = calibrated(b, {"Si": 1.17 * peak})
    read = unmix(p, shifted, moved, kind="gpdos")
    rigid = unmix(p, shifted, b, kind="gpdos")
    assert read["Si"]["concentration"] == pytest.approx(plain["Si"]["concentration"], rel=0.1)
    assert read.fit["residual_fraction"] < 0.5 * rigid.fit["residual_fraction"]
    assert moved.config["calibrated_modes"]["Si"]["scale"] == pytest.approx(1.17, rel=1e-6)
    assert "Si: local mode moved from" in notes[0]
    np.testing.assert_array_equal(moved.curves["gpdos"][b.elements.index("Zn")], b.curves["gpdos"][b.elements.index("Zn")])
    with pytest.raises(DefectnetError, match="no local mode above the band edge"):
        calibrated(b, {"Zn": 40.0})  # Zn's signature lies inside GaAs's bands
    with pytest.raises(DefectnetError, match="does not hold"):
        calibrated(b, {"Ge": 40.0})
    with pytest.raises(DefectnetError, match="is the unit right"):
        calibrated(b, {"Si": 384.0})  # cm⁻¹ given as meV


def test_predict_lvm_option_converts_units_and_needs_a_basis(capsys):
    from defectnet.cli import _local_modes, main

    assert _local_modes("Si=384cm-1, C=48")["Si"] == pytest.approx(47.61, abs=0.01)
    assert _local_modes("C=48")["C"] == 48.0
    files = ["--host", "GaAs", "--pristine", str(EXAMPLE / "pristine.csv"), "--doped", str(EXAMPLE / "doped.csv"),
             "--candidates", "Si,Zn"]
    with pytest.raises(SystemExit) as exit_:
        main(["predict", *files, "--lvm", "Si:47"])
    assert exit_.value.code == 2 and "ELEMENT=ENERGY" in capsys.readouterr().err
    assert main(["predict", *files, "--lvm", "Si=47.6"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "need a basis" in err[0]


def test_site_knots_fit_the_sublattice():
    from defectnet.signatures import MAX_SITE_SHARE, site_knots

    assert site_knots((0.01, 0.05, 0.15), 0.5) == (0.01, 0.05, 0.15)  # the site holds them: as they are
    zn = site_knots((0.01, 0.05, 0.15), 1 / 7)  # Zn in ZnAl2S4
    assert zn[:2] == (0.01, 0.05) and zn[2] == pytest.approx(MAX_SITE_SHARE / 7)
    thin = site_knots((0.01, 0.05, 0.15), 0.05)
    assert thin == pytest.approx((0.01, 0.02, 0.04)) and all(np.diff(thin) > 0)


def test_a_basis_on_a_minority_site_is_built_within_what_the_site_holds(cu_sim):
    """Au is 1/8 of a Cu7Au cell: 15 at.% of Ag on it cannot be placed, the basis' top cell fills 80 % of it."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))  # 8 atoms
    atoms[0].symbol = "Au"
    b = signature_basis(atoms, ["Ag@Au"], BasisConfig(concentrations=(0.01, 0.05, 0.15), simulation=cu_sim))
    x = b.realised[0]
    assert b.elements == ("Ag",) and np.all(np.diff(x) > 0)
    assert x[-1] <= 0.8 / 8 + 1e-9 and x[-1] > 0.05
