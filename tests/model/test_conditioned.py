"""The conditioned network: it reads each candidate through its simulated signature in the host.

A synthetic task where every host puts each dopant's local mode at its own random energy:
from the spectrum and the element alone the answer cannot be known on a host never seen;
through the host's basis it can.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from defectnet.elements import DOPANTS, N_FEATURES
from defectnet.errors import DefectnetError
from defectnet.grid import EnergyGrid
from defectnet.model.conditioned import BasisTable, candidate_order
from defectnet.model.conditioned_train import ConditionedTrainConfig, predict_conditioned, shift_modes, train_conditioned
from defectnet.model.dataset import HOST_ELEMENTS, TrainingData
from defectnet.model.architectures import build_model
from defectnet.model.network import ModelConfig
from defectnet.unmix import SignatureBasis, stretched

GRID = EnergyGrid(kind="linear", e_min_mev=0.0, e_max_mev=160.0, n_bins=128)
KNOTS = (0.01, 0.05, 0.15)
POOL = ("B", "C", "N", "Al", "Si", "P", "Ga", "Ge")


def _gauss(centre, width=2.0):
    g = np.exp(-0.5 * ((GRID.centers - centre) / width) ** 2)
    return g / (g @ GRID.widths)


def synthetic(n_hosts=30, per_host=40, seed=0):
    """(TrainingData, {host: SignatureBasis}): per host, each pool dopant has a mode at a random energy."""
    rng = np.random.default_rng(seed)
    index = {el: i for i, el in enumerate(DOPANTS)}
    rows, names, bases = {k: [] for k in ("p", "d", "t", "m", "h", "c")}, [], {}
    for h in range(n_hosts):
        name = f"host{h:02d}"
        names.append(name)
        pristine = _gauss(rng.uniform(15, 35), 6.0)
        modes = {el: _gauss(rng.uniform(50, 140)) for el in POOL}
        sig = {el: 0.5 * (modes[el] - pristine) for el in POOL}  # per unit concentration
        bases[name] = SignatureBasis(
            host=name, elements=POOL, grid=GRID, pristine={"pdos": pristine, "gpdos": pristine},
            signatures={k: np.array([sig[el] for el in POOL]) for k in ("pdos", "gpdos")},
            curves={k: np.array([[x * sig[el] for x in KNOTS] for el in POOL]) for k in ("pdos", "gpdos")},
            realised=np.tile(KNOTS, (len(POOL), 1)))
        comp = np.zeros(len(HOST_ELEMENTS), np.float32)
        comp[HOST_ELEMENTS.index("Si")] = 1.0
        for _ in range(per_host):
            k = int(rng.integers(1, 4))
            true = rng.choice(POOL, size=k + int(rng.integers(1, 3)), replace=False)
            conc = np.exp(rng.uniform(np.log(0.005), np.log(0.1), size=k))
            t, m = np.zeros(len(DOPANTS), np.float32), np.zeros(len(DOPANTS), bool)
            m[[index[el] for el in true]] = True
            t[[index[el] for el in true[:k]]] = conc
            doped = pristine + sum(c * sig[el] for el, c in zip(true[:k], conc))
            noisy = np.clip(doped + rng.normal(0, 2e-4, GRID.n_bins), 0, None)  # a measured density is >= 0
            for key, v in zip(rows, (pristine, noisy, t, m, h, comp)):
                rows[key].append(v)
    n = len(rows["t"])
    p, d = np.array(rows["p"]), np.array(rows["d"])
    data = TrainingData(pristine=p, doped=d, pristine_gpdos=p, doped_gpdos=d, targets=np.array(rows["t"]),
                        candidates=np.array(rows["m"]), composition=np.array(rows["c"]), host_id=np.array(rows["h"]),
                        n_dopants=(np.array(rows["t"]) > 0).sum(1), sample_id=np.arange(n),
                        supercell_atoms=np.full(n, 480), host_names=np.array(names, dtype=object), grid=GRID)
    return data, bases


SMALL = ModelConfig(arch="conditioned", n_bins=GRID.n_bins, channels=(8, 16, 16), d_model=32, n_heads=4, n_layers=1,
                    dropout=0.0)


@pytest.fixture(scope="module")
def trained():
    data, bases = synthetic()
    table = BasisTable(bases, data.vocabulary, GRID)
    hid = data.host_id
    train, val, test = (np.flatnonzero(sel) for sel in (hid < 20, (hid >= 20) & (hid < 24), hid >= 24))
    cfg = ConditionedTrainConfig(model=SMALL, epochs=25, batch_size=32, lr=3e-3, max_minutes=2.0,
                                 augment=ConditionedTrainConfig().augment.__class__(), mode_shift=0.0, threads=1)
    model, history = train_conditioned(data, table, train, val, cfg, progress=False)
    return data, table, model, test, history


def _mae(pred, data, idx):
    m = data.candidates[idx]
    return float(np.abs(pred - data.targets[idx])[m].mean())


def test_reads_never_seen_hosts_through_their_basis(trained):
    data, table, model, test, history = trained
    out = predict_conditioned(model, data, table, test)
    zero = _mae(np.zeros_like(data.targets[test]), data, test)
    right = _mae(out["concentration"], data, test)
    assert right < 0.4 * zero, (right, zero, history["val_mae_at_pct"])
    # the same spectra read against another host's signatures: the answer is gone
    wrong = BasisTable({h: table_basis for h, table_basis in zip(table.hosts, _rolled(table))}, data.vocabulary, GRID)
    out_wrong = predict_conditioned(model, data, wrong, test)
    assert _mae(out_wrong["concentration"], data, test) > 2 * right


def test_the_same_recipe_without_the_basis_cannot_read_them(trained):
    """The benchmark's no-basis rows (``benchmarks/conditioned.py --baselines``): the paper's architecture
    trained by the same recipe on the same hosts, without the basis, is far from the conditioned answer."""
    data, table, model, test, _ = trained
    hid = data.host_id
    train, val = np.flatnonzero(hid < 20), np.flatnonzero((hid >= 20) & (hid < 24))
    cfg = ConditionedTrainConfig(model=ModelConfig(arch="paper", n_bins=GRID.n_bins, dropout=0.0), epochs=5,
                                 batch_size=32, lr=3e-3, max_minutes=1.0, threads=1,
                                 augment=ConditionedTrainConfig().augment.__class__(), mode_shift=0.0)
    paper, history = train_conditioned(data, None, train, val, cfg, progress=False)
    assert paper.config.arch == "paper" and history["epochs_run"] >= 1
    plain = predict_conditioned(paper, data, table, test)
    assert np.all(plain["concentration"][~data.candidates[test]] == 0)
    right = _mae(predict_conditioned(model, data, table, test)["concentration"], data, test)
    assert _mae(plain["concentration"], data, test) > 1.5 * right


def test_training_reads_a_second_basis_where_there_is_one(trained):
    """Never train on a perfect match: with an alternative basis (here another host's curves) a
    training batch reads it with the configured chance; scoring (no rng) always reads the main one."""
    from defectnet.model.conditioned_train import BasisInputs

    data, table, _, _, _ = trained
    main = dict(zip(table.hosts, _rolled(table)))  # each host's signatures are the next host's ...
    plain_table = BasisTable(main, data.vocabulary, GRID)
    other = dict(zip(table.hosts, _rolled(plain_table)))  # ... and the alternative, the one after
    some = {h: other[h] for h in table.hosts[:10]}  # for ten hosts only
    alt = BasisTable(main, data.vocabulary, GRID).with_alternative(some)
    assert plain_table.alternative is None and alt.alternative.hosts == sorted(some)
    b = np.arange(len(data))
    inputs = BasisInputs(alt, alt.rows_of(data), data.candidates, data.pristine, GRID)
    main_curves, _ = inputs(b)
    alt_curves, _, ok = alt.alternative_lookup(alt.rows_of(data), data.candidates)
    names = np.asarray(data.host_names, str)[data.host_id]
    np.testing.assert_array_equal(ok, np.isin(names, list(some)))
    always = ConditionedTrainConfig(second_basis_probability=1.0, mode_shift=0.0)
    never = replace(always, second_basis_probability=0.0)
    got, _ = inputs(b, np.random.default_rng(0), always)
    np.testing.assert_array_equal(got[ok], alt_curves[ok])
    np.testing.assert_array_equal(got[~ok], main_curves[~ok])
    assert not np.allclose(got[ok], main_curves[ok])
    np.testing.assert_array_equal(inputs(b, np.random.default_rng(0), never)[0], main_curves)
    half, _ = inputs(b, np.random.default_rng(0), replace(always, second_basis_probability=0.5))
    swapped = np.array([np.array_equal(half[i], alt_curves[i]) for i in np.flatnonzero(ok)])
    assert 0.3 < swapped.mean() < 0.7


def _rolled(table):
    """Each host's basis replaced by the next host's (same candidates, other mode energies)."""
    out = []
    for h in range(len(table.hosts)):
        j = (h + 1) % len(table.hosts)
        els = [DOPANTS[v] for v in np.flatnonzero(table.has[j])]
        cols = np.flatnonzero(table.has[j])
        curves = table.curves[j, cols].astype(float)
        out.append(SignatureBasis(host=table.hosts[h], elements=tuple(els), grid=GRID,
                                  pristine={"pdos": np.zeros(GRID.n_bins), "gpdos": np.zeros(GRID.n_bins)},
                                  signatures={k: curves[:, 0] / KNOTS[0] for k in ("pdos", "gpdos")},
                                  curves={k: curves for k in ("pdos", "gpdos")}, realised=table.knots[j, cols]))
    return out


def test_outputs_are_exactly_zero_off_the_candidates_and_do_not_depend_on_the_batch(trained):
    data, table, model, test, _ = trained
    out = predict_conditioned(model, data, table, test)
    assert np.all(out["concentration"][~data.candidates[test]] == 0)
    assert np.all(out["presence"][~data.candidates[test]] == 0)
    one = predict_conditioned(model, data, table, test[:1])
    np.testing.assert_allclose(one["concentration"][0], out["concentration"][0], rtol=1e-4, atol=1e-7)


def test_candidate_order_and_basis_table_refusals():
    mask = np.array([[False, True, False, True], [True, False, False, False]])
    order, valid = candidate_order(mask)
    np.testing.assert_array_equal(order[0], [1, 3])
    np.testing.assert_array_equal(valid, [[True, True], [True, False]])
    data, bases = synthetic(n_hosts=2, per_host=3)
    table = BasisTable(bases, data.vocabulary, GRID)
    with pytest.raises(DefectnetError, match="no signature basis"):
        table.row("GaAs")
    m = np.zeros((1, len(DOPANTS)), bool)
    m[0, DOPANTS.index("Zn")] = True  # not in the pool
    with pytest.raises(DefectnetError, match="Zn has no signature"):
        table.lookup([0], m)
    other = EnergyGrid(kind="linear", e_min_mev=0.0, e_max_mev=200.0, n_bins=128)
    b = bases["host00"]
    moved = SignatureBasis(host=b.host, elements=b.elements, grid=other, pristine=b.pristine, signatures=b.signatures,
                           curves=b.curves, realised=b.realised)
    with pytest.raises(DefectnetError, match="grid"):
        BasisTable({"host00": moved}, DOPANTS, GRID)


def test_shift_modes_is_unmix_stretched_batched():
    rng = np.random.default_rng(1)
    curves = rng.normal(size=(2, 3, 3, GRID.n_bins))
    edges, scales = np.array([30.0, 45.0]), rng.uniform(0.85, 1.15, (2, 3))
    got = shift_modes(curves, edges, scales, GRID)
    for b in range(2):
        for k in range(3):
            np.testing.assert_allclose(got[b, k], stretched(curves[b, k], GRID, edges[b], scales[b, k]), atol=1e-5)


def test_conditioned_arch_is_registered_and_counts_its_inputs():
    model = build_model(SMALL, GRID)
    assert type(model).__name__ == "ConditionedNet"
    B, K = 3, 2
    cand = torch.zeros(B, len(DOPANTS), dtype=torch.bool)
    cand[:, :K] = True
    p = torch.rand(B, GRID.n_bins)
    out = model(p, p * 1.01, torch.ones(B, len(HOST_ELEMENTS)), cand, torch.zeros(B, K, 3, GRID.n_bins),
                torch.tensor(KNOTS).repeat(B, K, 1).float())
    assert out["concentration"].shape == (B, len(DOPANTS)) and torch.all(out["concentration"][:, K:] == 0)
    assert N_FEATURES == 8


def test_candidates_are_a_set_their_curves_follow_them():
    """Reordering the vocabulary (and the curves with it) permutes the outputs, nothing else."""
    data, bases = synthetic(n_hosts=2, per_host=6, seed=3)
    cfg = ModelConfig(**{**SMALL.to_dict(), "element_embedding": 0})
    torch.manual_seed(0)
    model = build_model(cfg, GRID).eval()
    perm = np.random.default_rng(0).permutation(len(DOPANTS))
    vocab = tuple(DOPANTS[i] for i in perm)
    other = build_model(cfg, GRID, vocabulary=vocab).eval()
    other.load_state_dict({k: v for k, v in model.state_dict().items() if k not in ("dopant_feats", "dopant_mass")},
                          strict=False)
    rows = data.host_id
    a_in = BasisTable(bases, DOPANTS, GRID).lookup(rows, data.candidates)
    b_in = BasisTable(bases, vocab, GRID).lookup(rows, data.candidates[:, perm])
    x = [torch.from_numpy(v) for v in (data.pristine, data.doped, data.composition)]
    with torch.no_grad():
        a = model(*x, torch.from_numpy(data.candidates), *map(torch.from_numpy, a_in))
        b = other(*x, torch.from_numpy(data.candidates[:, perm]), *map(torch.from_numpy, b_in))
    for key in ("concentration", "sigma", "presence"):
        torch.testing.assert_close(a[key][:, perm], b[key], rtol=1e-4, atol=1e-6)


def test_physics_reading_recovers_concentrations_with_coupling_and_drops_absent_candidates():
    """Δ built from signatures whose size per unit concentration grows with the total (coupled
    dopants), read back exactly; a candidate that is not there reads 0, never negative."""
    from defectnet.model.conditioned import per_unit_at

    model = build_model(ModelConfig(arch="conditioned", n_bins=GRID.n_bins), GRID)
    rng = np.random.default_rng(3)
    B, K = 16, 4
    knots = torch.tensor(KNOTS, dtype=torch.float64).expand(B, K, 3).contiguous()
    shapes = torch.stack([torch.as_tensor(_gauss(e) - _gauss(e + 30, 8.0)) for e in (50, 80, 110, 140)])  # (K, G)
    growth = 1 + 2 * knots  # per-unit size at each knot: rises with the concentration
    b = growth[..., None] * knots[..., None] * shapes[None, :, None, :]  # (B, K, 3, G)
    true = torch.as_tensor(rng.uniform(0.005, 0.08, (B, K)))
    true[:, 3] = 0.0  # the fourth candidate is a distractor
    valid = torch.ones(B, K, dtype=torch.bool)
    delta = (true[..., None] * per_unit_at(b, knots, true.sum(1))).sum(1)  # (B, G)
    slope = b[:, :, 0] / knots[:, :, :1]
    c, resid = model.double().physics_reading(delta, b, slope, knots, valid)
    assert torch.all(c >= 0)
    np.testing.assert_allclose(c.numpy(), true.numpy(), atol=2e-3)
    assert float(resid.norm() / delta.norm()) < 0.02


def test_warp_curves_stretches_whole_curves_keeping_area_and_scales_them():
    from defectnet.model.conditioned_train import ConditionedTrainConfig, warp_curves

    e = GRID.centers
    peak = np.exp(-0.5 * ((e - 0.4 * e[-1]) / (0.02 * e[-1])) ** 2)  # a curve well inside the grid
    curves = np.broadcast_to(peak, (4, 3, 2, len(e))).astype(np.float32).copy()
    off = ConditionedTrainConfig()
    np.testing.assert_array_equal(warp_curves(curves, np.random.default_rng(0), off, GRID), curves)
    stretch = ConditionedTrainConfig(basis_stretch=0.2, basis_warp_probability=1.0)
    got = warp_curves(curves, np.random.default_rng(1), stretch, GRID)
    first = (got * e).sum(-1) / got.sum(-1)  # each curve's mean energy moved by its own factor ...
    assert np.ptp(first) > 0.02 * e[-1] and np.all(np.abs(first / ((peak * e).sum() / peak.sum()) - 1) <= 0.21)
    np.testing.assert_allclose(got.sum(-1), curves.sum(-1), rtol=0.01)  # ... its area kept (to interpolation)
    gain = ConditionedTrainConfig(basis_gain=0.3, basis_warp_probability=1.0)
    ratio = warp_curves(curves, np.random.default_rng(2), gain, GRID).sum(-1) / curves.sum(-1)
    assert np.all((ratio >= 0.7 - 1e-6) & (ratio <= 1.3 + 1e-6)) and np.ptp(ratio) > 0.05
    np.testing.assert_allclose(ratio[..., 0], ratio[..., 1], rtol=1e-6)  # one factor per candidate, all knots


def test_drop_true_dopant_removes_one_true_candidate_and_keeps_distractors():
    from defectnet.model.conditioned_train import drop_true_dopant

    rng = np.random.default_rng(0)
    cands = rng.random((200, 12)) < 0.5
    targets = np.where(cands & (rng.random((200, 12)) < 0.5), rng.uniform(0.002, 0.2, (200, 12)), 0.0)
    n_true = (cands & (targets > 0)).sum(1)
    np.testing.assert_array_equal(drop_true_dopant(cands, targets, np.random.default_rng(1), 0.0), cands)
    got = drop_true_dopant(cands, targets, np.random.default_rng(1), 1.0)
    assert not np.any(got & ~cands)  # nothing added
    np.testing.assert_array_equal(got & (targets == 0), cands & (targets == 0))  # distractors kept
    np.testing.assert_array_equal((cands & ~got).sum(1), np.minimum(n_true, 1))  # one true dopant, where there is one
    half = drop_true_dopant(cands, targets, np.random.default_rng(2), 0.5)
    assert 0.35 < (half != cands).any(1)[n_true > 0].mean() < 0.65


def test_training_reads_shortened_lists_and_warped_curves():
    data, bases = synthetic()
    table = BasisTable(bases, data.vocabulary, GRID)
    idx = np.arange(len(data))
    cfg = ConditionedTrainConfig(model=SMALL, epochs=2, batch_size=32, max_minutes=1.0, threads=1,
                                 drop_true_probability=1.0, basis_stretch=0.1, basis_gain=0.2,
                                 foreign_curve_probability=0.5)
    model, history = train_conditioned(data, table, idx[::2], idx[1::2], cfg, progress=False)
    assert history["epochs_run"] == 2 and np.isfinite(history["val_mae_at_pct"]).all()
    out = predict_conditioned(model, data, table, idx[1::2])
    assert np.isfinite(out["concentration"]).all()
    assert np.all(out["concentration"][~data.candidates[1::2]] == 0)  # the hard mask holds


def test_foreign_curves_come_from_the_same_element_in_another_allowed_host():
    from defectnet.model.conditioned_train import foreign_curves

    data, bases = synthetic()
    table = BasisTable(bases, data.vocabulary, GRID)
    rows = table.rows_of(data)
    b = np.arange(len(data))
    curves, knots = table.lookup(rows[b], data.candidates[b])
    allowed = np.arange(0, len(table.hosts), 2)  # "training hosts": every other one
    same, _ = foreign_curves(curves, knots, table, rows[b], data.candidates[b], allowed, np.random.default_rng(0), 0.0)
    np.testing.assert_array_equal(same, curves)
    got, got_knots = foreign_curves(curves, knots, table, rows[b], data.candidates[b], allowed,
                                    np.random.default_rng(0), 1.0)
    order, valid = candidate_order(data.candidates[b])
    changed = 0
    for i, k in np.argwhere(valid):
        v = order[i, k]
        sources = [r for r in allowed if table.has[r, v] and r != rows[i]]
        if not sources:
            np.testing.assert_array_equal(got[i, k], curves[i, k])
            continue
        match = [r for r in sources if np.array_equal(got[i, k], table.curves[r, v])]
        assert match, (i, k)  # another allowed host's curve of the same element, never its own host's
        np.testing.assert_array_equal(got_knots[i, k], table.knots[match[0], v])
        changed += 1
    assert changed > 0.5 * valid.sum() and not np.array_equal(got, curves)
