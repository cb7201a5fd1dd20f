"""HDF5 instrument files written here with h5py: Mantid-processed NeXus workspaces and NXSPE."""

import re

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import constants

from defectnet.errors import DefectnetError
from defectnet.io import read_spectrum
from defectnet.nexus import NxspeReduction, read_nexus

CM1_PER_MEV = 8.065543937
# ħ²/2m_n in meV Å², written out independently of the reader.
E_PER_K2 = (constants.hbar**2 / (2 * constants.m_n)) / constants.e * 1e3 * 1e20
KB = constants.k / constants.e * 1e3  # meV/K


def write_mantid(path, x, y, e, *, units="DeltaE", distribution="1", n_spectra=1):
    with h5py.File(path, "w") as f:
        ws = f.create_group("mantid_workspace_1").create_group("workspace")
        ws.attrs["NX_class"] = "NXdata"
        ax = ws.create_dataset("axis1", data=x)
        if units is not None:
            ax.attrs["units"] = units
        v = ws.create_dataset("values", data=np.tile(y, (n_spectra, 1)))
        v.attrs["distribution"] = distribution
        ws.create_dataset("errors", data=np.tile(e, (n_spectra, 1)))
        ws.create_dataset("axis2", data=np.arange(n_spectra + 1, dtype=float))


def test_mantid_histogram_in_wavenumbers_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    edges_cm = np.linspace(40.0, 3600.0, 201)
    y, e = rng.uniform(0.1, 2.0, 200), rng.uniform(0.01, 0.05, 200)
    p = tmp_path / "tosca_ws.nxs"
    write_mantid(p, edges_cm, y, e, units="DeltaE_inWavenumber")
    for s in (read_nexus(p), read_spectrum(p)):  # read_spectrum knows HDF5 by its signature
        assert s.meta["format"] == "mantid-nexus" and s.meta["unit"] == "cm-1"
        assert_allclose(s.edges_mev, edges_cm / CM1_PER_MEV, rtol=1e-12)
        assert_allclose(s.values, y * CM1_PER_MEV, rtol=1e-12)
        assert_allclose(s.errors, e * CM1_PER_MEV, rtol=1e-12)


def test_mantid_points_descending_and_counts(tmp_path):
    x = np.linspace(100.0, 5.0, 40)  # point data, descending
    y, e = np.linspace(1.0, 2.0, 40), np.full(40, 0.1)
    p = tmp_path / "points.nxs"
    write_mantid(p, x, y, e)
    s = read_nexus(p)
    assert_allclose(s.values, y[::-1]) and s.meta["unit"] == "meV"
    edges = np.linspace(0.0, 80.0, 41)  # histogram of counts per bin (distribution 0) → per meV
    write_mantid(p, edges, y, e, distribution="0")
    s = read_nexus(p)
    assert_allclose(s.values, y / 2.0) and assert_allclose(s.errors, e / 2.0)
    assert s.meta["divided_by_bin_width"] is True


# ------------------------------------------------------------------ NXSPE


def known_g(e):
    """A two-peak DOS (unit-free)."""
    return np.exp(-0.5 * ((e - 25.0) / 4.0) ** 2) + 0.6 * np.exp(-0.5 * ((e - 62.0) / 6.0) ** 2)


def forward_s(ei, e, two_theta, temperature, u2):
    """Incoherent one-phonon S(Q, E) ∝ Q² exp(−Q²⟨u²⟩) g(E)/E · (n + 1), Q from the vectors ki − kf."""
    ki = np.sqrt(ei / E_PER_K2)
    kf = np.sqrt((ei - e) / E_PER_K2)
    tt = np.radians(two_theta)
    qx, qz = -kf * np.sin(tt), ki - kf * np.cos(tt)  # ki along z, kf in the x–z plane
    q2 = qx**2 + qz**2
    bose_plus_1 = 1.0 / (1.0 - np.exp(-e / (KB * temperature)))
    return q2 * np.exp(-q2 * u2) * known_g(e) / e * bose_plus_1


def write_nxspe(path, s, err, edges, polar, ei, *, scaled=1, drop=None, entry="sample_run"):
    with h5py.File(path, "w") as f:
        g = f.create_group(entry)
        g.attrs["NX_class"] = "NXentry"
        g.create_dataset("definition", data="NXSPE")
        info, data = g.create_group("NXSPE_info"), g.create_group("data")
        info.create_dataset("fixed_energy", data=[ei])
        info.create_dataset("ki_over_kf_scaling", data=[scaled])
        info.create_dataset("psi", data=[0.0])
        for name, arr in {"data": s, "error": err, "energy": edges, "polar": polar,
                          "azimuthal": np.zeros_like(polar)}.items():
            if name != drop:
                data.create_dataset(name, data=arr)


EI, EDGES, POLAR = 120.0, np.linspace(-10.0, 118.0, 129), np.linspace(3.0, 135.0, 120)
CENTRES = 0.5 * (EDGES[1:] + EDGES[:-1])


def nxspe_from_known_g(tmp_path, temperature=300.0, u2=0.006, name="run.nxspe", **kw):
    e = np.where(CENTRES > 0, CENTRES, np.nan)  # no one-phonon formula at E ≤ 0: the elastic side
    s = forward_s(EI, e[None, :], POLAR[:, None], temperature, u2)
    s = np.where(np.isfinite(s), s, 5.0)  # an "elastic line" the reader must drop
    err = 0.02 * s + 1e-4
    p = tmp_path / name
    write_nxspe(p, s, err, EDGES, POLAR, EI, **kw)
    return p, s, err


def test_nxspe_reduces_back_to_the_known_dos(tmp_path):
    p, s, err = nxspe_from_known_g(tmp_path)
    g = read_nexus(p, reduction=NxspeReduction(temperature_k=300.0, u2_a2=0.006))
    assert g.kind == "gpdos" and g.edges_mev[0] == 0.0 and g.edges_mev[-1] < EI
    assert_allclose(g.values, known_g(g.centers_mev), rtol=1e-9)
    red = g.meta["reduction"]
    assert red["approximation"] == "incoherent one-phonon" and red["multiphonon_correction"] is None
    assert red["temperature_k"] == 300.0 and red["u2_a2"] == 0.006
    # Errors by hand for one bin: √(Σ_det (σ · g/S)²) / N_det (every detector contributes here).
    j = 30
    col = int(np.searchsorted(CENTRES, g.centers_mev[j]))
    per_det = known_g(CENTRES[col]) / s[:, col]
    assert g.errors[j] == pytest.approx(np.sqrt(np.sum((err[:, col] * per_det) ** 2)) / POLAR.size, rel=1e-9)


def test_nxspe_assumptions_matter(tmp_path):
    p, _, _ = nxspe_from_known_g(tmp_path)
    cold = read_nexus(p)  # the defaults, 5 K and ⟨u²⟩ = 0, on 300 K data with a Debye–Waller factor
    assert cold.meta["reduction"]["temperature_k"] == 5.0 and cold.meta["reduction"]["u2_a2"] == 0.0
    rel = np.abs(cold.values / known_g(cold.centers_mev) - 1)
    assert rel.max() > 0.2  # wrong Bose and Debye–Waller factors are visible


def test_nxspe_q_window_mask_and_ki_over_kf(tmp_path):
    p, s, err = nxspe_from_known_g(tmp_path)
    r = NxspeReduction(q_min=2.0, q_max=6.0, temperature_k=300.0, u2_a2=0.006)
    g = read_nexus(p, reduction=r)
    q_lo, q_hi = g.meta["reduction"]["q_used_inv_a"]
    assert 2.0 <= q_lo and q_hi <= 6.0
    assert_allclose(g.values, known_g(g.centers_mev), rtol=1e-9)
    s_masked = s.copy()
    s_masked[5, :], s_masked[7, 40:60] = np.nan, -1e30  # a dead detector; SPE-style masked bins
    ki_kf = np.sqrt(EI / np.clip(EI - CENTRES, 1e-9, None))
    q = tmp_path / "raw.nxspe"  # d²σ/dΩdE without ki/kf: S · kf/ki, flag 0
    write_nxspe(q, s_masked / ki_kf, err, EDGES, POLAR, EI, scaled=0)
    h = read_nexus(q, reduction=NxspeReduction(temperature_k=300.0, u2_a2=0.006))
    assert_allclose(h.values, known_g(h.centers_mev), rtol=1e-9)
    assert h.meta["reduction"]["masked_bins"] > 0 and h.meta["reduction"]["ki_over_kf_applied_by_reader"]


@pytest.mark.parametrize("kw, pattern", [
    ({"drop": "polar"}, r"no dataset sample_run/data/polar"),
    ({"drop": "error"}, r"no dataset sample_run/data/error"),
    ({"polar": POLAR[:-3]}, r"data/polar has 117 angles; expected one per detector \(120\)"),
    ({"err": np.ones((120, 10))}, r"data/error has shape \(120, 10\); expected \(120, 128\)"),
    ({"edges": EDGES[:50]}, r"data/energy has 50 values for 128 energy bins"),
    ({"ei": -5.0}, r"fixed_energy must be one positive Ei"),
])
def test_bad_nxspe_files(tmp_path, kw, pattern):
    args = {"s": np.ones((120, 128)), "err": np.ones((120, 128)), "edges": EDGES, "polar": POLAR, "ei": EI}
    drop = kw.pop("drop", None)
    args.update(kw)
    p = tmp_path / "bad.nxspe"
    write_nxspe(p, args["s"], args["err"], args["edges"], args["polar"], args["ei"], drop=drop)
    with pytest.raises(DefectnetError) as e:
        read_spectrum(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: ") and re.search(pattern, msg) and "\n" not in msg, msg


def test_bad_mantid_and_other_hdf5(tmp_path):
    p = tmp_path / "bad.nxs"
    cases = [
        (dict(n_spectra=3), r"values has shape \(3, 10\); expected one spectrum"),
        (dict(units="TOF"), r"axis1 units 'TOF' are not an energy unit"),
        (dict(units=None), r"axis1 units None"),
    ]
    for kw, pattern in cases:
        write_mantid(p, np.linspace(1, 11, 11), np.ones(10), np.ones(10) * 0.1, **kw)
        with pytest.raises(DefectnetError, match=pattern):
            read_spectrum(p)
    write_mantid(p, np.linspace(1, 11, 7), np.ones(10), np.ones(10) * 0.1)
    with pytest.raises(DefectnetError, match="axis1 has 7 values for 10 bins"):
        read_spectrum(p)
    with h5py.File(p, "w") as f:
        f.create_group("entry").create_dataset("x", data=[1.0])
    with pytest.raises(DefectnetError, match="neither a Mantid workspace .* nor an NXSPE entry"):
        read_spectrum(p)
    p.write_text("not hdf5\n")
    with pytest.raises(DefectnetError, match="not a readable HDF5 file"):
        read_nexus(p)


def test_q_range_outside_the_data_and_bad_reduction(tmp_path):
    p, _, _ = nxspe_from_known_g(tmp_path)
    with pytest.raises(DefectnetError, match=r"no detector-bin has Q in \[40, 50\] Å⁻¹ \(the file covers"):
        read_nexus(p, reduction=NxspeReduction(q_min=40.0, q_max=50.0))
    for bad in (dict(q_min=3.0, q_max=2.0), dict(temperature_k=-1.0), dict(u2_a2=float("nan"))):
        with pytest.raises(DefectnetError, match="NXSPE reduction"):
            NxspeReduction(**bad)
