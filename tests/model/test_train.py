"""Training: the baby config learns, seeded runs repeat, resume continues exactly, early stopping; splits; augmentation."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID
from defectnet.model.augment import Augment
from defectnet.model.baselines import MeanBaseline
from defectnet.model.dataset import (
    SplitConfig,
    load_training_file,
    split_by_host,
    write_training_file,
)
from defectnet.model.evaluate import compute_metrics
from defectnet.model.synthetic import make_synthetic
from defectnet.model.train import TrainConfig, train

BABY = Path(__file__).resolve().parents[2] / "configs" / "baby.yaml"


@pytest.fixture(scope="module")
def data():
    return make_synthetic(8, 40, seed=1)


@pytest.fixture(scope="module")
def baby():
    return TrainConfig.from_yaml(BABY)


@pytest.fixture(scope="module")
def trained(data, baby, tmp_path_factory):
    return train(data, baby, tmp_path_factory.mktemp("baby"), progress=False, log=lambda s: None)


def test_baby_learns_better_than_the_mean_predictor(data, baby, trained):
    split = split_by_host(data, baby.split)
    tr = split.train
    mean = MeanBaseline(data.grid.widths).fit(data.pristine[tr], data.doped[tr], data.composition[tr],
                                               data.candidates[tr], data.targets[tr])
    for part in ("test_id", "test_ood"):
        idx = split.part(part)
        floor = compute_metrics(mean.predict(data.pristine[idx], data.doped[idx], data.composition[idx],
                                             data.candidates[idx]), data.targets[idx], data.candidates[idx])
        assert trained.metrics[part]["mae_at_pct"] < 0.9 * floor["mae_at_pct"], part
    assert trained.history[-1]["train_loss"] < trained.history[0]["train_loss"]
    assert trained.seconds < 60


def test_run_directory_contents(trained, baby):
    out = trained.out_dir
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == trained.metrics["epochs_run"] == len(trained.history)
    assert {"epoch", "train_loss", "val_loss", "val_mae_at_pct", "lr"} <= set(json.loads(lines[0]))
    assert TrainConfig.from_yaml(out / "config.yaml") == baby
    split = json.loads((out / "split.json").read_text())
    assert not set(split["train"]) & set(split["test_ood"])
    assert (out / "model.pt").is_file() and (out / "last.pt").is_file()


def test_seeded_training_is_repeatable(data, baby, tmp_path):
    cfg = replace(baby, epochs=2, augment=Augment(noise=0.05, stretch=0.02, extra_fwhm_mev=(0, 1), probability=1))
    a = train(data, cfg, tmp_path / "a", progress=False, log=lambda s: None)
    b = train(data, cfg, tmp_path / "b", progress=False, log=lambda s: None)
    c = train(data, replace(cfg, seed=1), tmp_path / "c", progress=False, log=lambda s: None)
    sa, sb, sc = (r.model.state_dict() for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_resume_continues_exactly(data, baby, tmp_path):
    cfg = replace(baby, epochs=4, patience=10)
    full = train(data, cfg, tmp_path / "full", progress=False, log=lambda s: None)

    class Interrupt(Exception):
        pass

    def crash_after_epoch_2(line):
        if line.startswith("epoch   2"):
            raise Interrupt

    with pytest.raises(Interrupt):
        train(data, cfg, tmp_path / "cut", progress=False, log=crash_after_epoch_2)
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 2
    resumed = train(data, cfg, tmp_path / "cut", resume=True, progress=False, log=lambda s: None)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    sf, sr = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(sf[k], sr[k]) for k in sf)
    with pytest.raises(DefectnetError, match="differ"):
        train(data, replace(cfg, lr=0.01), tmp_path / "cut", resume=True, progress=False, log=lambda s: None)


def test_early_stopping(data, baby, tmp_path):
    cfg = replace(baby, epochs=6, patience=1, lr=1e-12, schedule="constant")
    res = train(data, cfg, tmp_path, progress=False, log=lambda s: None)
    assert res.metrics["epochs_run"] == 2
    assert res.metrics["stopped"].startswith("early stop")


def test_monitoring_the_held_out_hosts_selects_their_best_epoch(data, baby, tmp_path):
    cfg = replace(baby, epochs=4, patience=4, monitor_split="val_ood", split=replace(baby.split, calib_host_fraction=0.3))
    res = train(data, cfg, tmp_path, progress=False, log=lambda s: None)
    hist = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    held, val = [r["val_ood_loss"] for r in hist], [r["val_loss"] for r in hist]
    assert res.metrics["best_epoch"] == 1 + int(np.argmin(held))  # chosen on the held-out hosts...
    assert all(np.isfinite(val))  # ...with the training hosts' validation still logged
    with pytest.raises(DefectnetError, match="monitor_split: val_ood needs calibration hosts"):
        train(data, replace(baby, monitor_split="val_ood"), tmp_path / "none", progress=False, log=lambda s: None)
    with pytest.raises(DefectnetError, match="monitor_split must be"):
        replace(baby, monitor_split="test_ood")


def test_config_rejects_unknown_keys(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("arch: defectnet\nepoch: 3\n")
    with pytest.raises(DefectnetError, match="unknown training config keys"):
        TrainConfig.from_yaml(f)
    f.write_text("augment: {noise: 0.1, blur: 2}\n")
    with pytest.raises(DefectnetError, match="unknown augment keys"):
        TrainConfig.from_yaml(f)


def test_host_grouped_split_is_seeded_and_disjoint(data):
    a, b = split_by_host(data, SplitConfig(seed=0)), split_by_host(data, SplitConfig(seed=0))
    c = split_by_host(data, SplitConfig(seed=5))
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("train", "val", "test_id", "test_ood"))
    assert a.ood_hosts != c.ood_hosts or not np.array_equal(a.train, c.train)
    parts = [set(a.train), set(a.val), set(a.test_id), set(a.test_ood)]
    assert sum(map(len, parts)) == len(data) and len(set().union(*parts)) == len(data)
    assert not set(data.hosts_of(a.train)) & set(a.ood_hosts)
    assert set(data.hosts_of(a.test_id)) <= set(data.hosts_of(a.train))
    assert set(data.hosts_of(a.test_ood)) == set(a.ood_hosts)


def test_calibration_hosts_are_held_out_whole(data):
    plain = split_by_host(data, SplitConfig(seed=0))
    a = split_by_host(data, SplitConfig(seed=0, calib_host_fraction=0.3))
    assert len(plain.val_ood) == 0 and plain.calib_hosts == ()
    assert a.ood_hosts == plain.ood_hosts  # drawn first, so unchanged
    assert len(a.calib_hosts) == 2 and not set(a.calib_hosts) & (set(a.ood_hosts) | set(a.train_hosts))
    assert set(data.hosts_of(a.val_ood)) == set(a.calib_hosts)
    parts = [set(a.part(k)) for k in ("train", "val", "val_ood", "test_id", "test_ood")]
    assert sum(map(len, parts)) == len(data) and len(set().union(*parts)) == len(data)
    assert not set(data.hosts_of(a.train)) & set(a.calib_hosts)
    names = sorted(data.hosts_of())
    given = split_by_host(data, SplitConfig(seed=0, ood_hosts=names[:1], calib_hosts=names[1:3]))
    assert given.ood_hosts == tuple(names[:1]) and given.calib_hosts == tuple(names[1:3])
    assert set(data.hosts_of(given.val_ood)) == set(names[1:3]) and not set(given.train_hosts) & set(names[:3])
    with pytest.raises(DefectnetError, match="both ood_hosts and calib_hosts"):
        SplitConfig(ood_hosts=names[:1], calib_hosts=names[:2])
    with pytest.raises(DefectnetError, match="calib_hosts .* not in the data"):
        split_by_host(data, SplitConfig(calib_hosts=("Unobtainium",)))


def test_unseen_host_uncertainty_is_calibrated_on_held_out_hosts(data, baby, tmp_path):
    from defectnet.model.checkpoint import load_model
    from defectnet.model.network import host_calibration

    cfg = replace(baby, epochs=3, split=replace(baby.split, calib_host_fraction=0.3))
    res = train(data, cfg, tmp_path, progress=False, log=lambda s: None)
    m = res.metrics
    assert np.isfinite(m["sigma_scale_unseen"]) and m["sigma_scale_unseen"] > 0 and "val_ood" in m
    model = load_model(tmp_path / "model.pt")
    assert model.sigma_scale_unseen == pytest.approx(m["sigma_scale_unseen"])
    assert float(model.sigma_scale) == pytest.approx(m["sigma_scale"])
    unseen = host_calibration(model, seen=False)
    assert float(unseen.sigma_scale) == pytest.approx(m["sigma_scale_unseen"])
    assert float(model.sigma_scale) == pytest.approx(m["sigma_scale"])  # the model passed in is unchanged
    assert host_calibration(model, seen=True) is model
    comps = model.meta["data"]["train_compositions"]
    assert comps and all(abs(sum(c.values()) - 1) < 1e-3 for c in comps)


def test_augmentation_keeps_area_and_stretches_energy():
    grid = DEFAULT_GRID
    e = grid.centers
    spec = np.exp(-0.5 * ((e - 40.0) / 1.0) ** 2)
    spec /= np.sum(spec * grid.widths)
    p = torch.tensor(np.stack([spec, spec]), dtype=torch.float32)
    rng = np.random.default_rng(0)
    aug = Augment(stretch=0.05, extra_fwhm_mev=(2.0, 2.0), noise=0.0, probability=1.0)
    p2, d2 = aug(p, p.clone(), grid, rng)
    w = torch.tensor(grid.widths, dtype=torch.float32)
    torch.testing.assert_close((p2 * w).sum(1), torch.ones(2), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(p2, d2)  # one instrument, one potential: the pair moves together
    peak = e[p2.argmax(1).numpy()]
    assert np.all(np.abs(peak - 40.0) <= 0.05 * 40.0 + 1.0) and np.any(np.abs(peak - 40.0) > 0.2)
    assert float(p2.max()) < float(p.max()) * 0.9  # broadened


def test_background_augmentation_is_smooth_bounded_and_per_spectrum():
    grid = DEFAULT_GRID
    e = grid.centers
    spec = np.exp(-0.5 * ((e - 40.0) / 1.0) ** 2)
    spec /= np.sum(spec * grid.widths)
    p = torch.tensor(np.stack([spec] * 4), dtype=torch.float32)
    aug = Augment(background=0.2, probability=1.0)
    p2, d2 = aug(p, p.clone(), grid, np.random.default_rng(1))
    w = torch.tensor(grid.widths, dtype=torch.float32)
    torch.testing.assert_close((p2 * w).sum(1), torch.ones(4), rtol=1e-5, atol=1e-5)
    added = ((p2 - p).clamp_min(0) * w).sum(1)  # area moved into the background
    assert torch.all(added <= 0.2 + 1e-6) and torch.all(added > 0)
    assert not torch.allclose(p2, d2)  # each measurement has its own background
    far = torch.as_tensor(np.abs(e - 40.0) > 10.0)
    assert torch.all(p2[:, far] >= 0) and float(p2[:, far].max()) < 0.05 * float(p2.max())  # smooth and low


def test_training_file_round_trip(data, tmp_path):
    for name in ("d.npz", "d.h5"):
        back = load_training_file(write_training_file(data, tmp_path / name))
        assert back.grid == data.grid and back.vocabulary == data.vocabulary
        assert np.array_equal(back.targets, data.targets) and np.array_equal(back.candidates, data.candidates)
        assert list(back.host_names) == list(data.host_names)
        try:  # the dataset pipeline's own reader must accept what we write (one contract)
            from defectnet.data.training_file import read_training_file as pipeline_reader
        except ImportError:
            continue
        d = pipeline_reader(tmp_path / name)
        assert d["host_names"] == list(data.host_names) and np.array_equal(d["targets"], data.targets)
    with pytest.raises(DefectnetError, match="does not exist"):
        load_training_file(tmp_path / "missing.h5")


def test_train_and_evaluate_commands_in_process(data, tmp_path, capsys):
    from defectnet.model.commands import Evaluate, Train

    f = write_training_file(data, tmp_path / "d.npz")
    for cmd, argv in ((Train(), ["--data", str(f), "--config", str(BABY), "--out", str(tmp_path / "run"),
                                 "--set", "epochs=2", "--quiet"]),
                      (Evaluate(), [str(tmp_path / "run" / "model.pt"), "--data", str(f), "--split", "ood",
                                    "--out", str(tmp_path / "eval")])):
        p = argparse.ArgumentParser()
        cmd.add_arguments(p)
        assert cmd.run(p.parse_args(argv)) == 0
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["split"] == "ood" and m["n_samples"] > 0
    table = capsys.readouterr().out.split("family")[-1].splitlines()  # the per-family table
    assert table[1].split()[:2] == ["?", str(m["n_samples"])]
    assert set(m["hosts"]) == set(json.loads((tmp_path / "run" / "split.json").read_text())["ood_hosts"])
    for png in ("parity", "fig4_quartiles", "per_element", "breakdown", "distractors", "calibration"):
        assert (tmp_path / "eval" / f"{png}.png").stat().st_size > 1000


def _shifted(data, factor):
    """The same samples with every energy × ``factor`` (another potential's softer phonons)."""
    from defectnet.model.augment import _stretch

    out = {}
    for name in ("pristine", "doped", "pristine_gpdos", "doped_gpdos"):
        a = getattr(data, name)
        q = a * data.grid.widths
        q = _stretch(torch.as_tensor(q / q.sum(1, keepdims=True), dtype=torch.float32), data.grid,
                     torch.full((len(a),), factor)).numpy()
        out[name] = (q / data.grid.widths).astype(np.float32)
    return replace(data, **out)


def test_finetune_adapts_to_shifted_spectra_and_respects_freeze(data, baby, trained, tmp_path):
    from defectnet.model.checkpoint import load_model
    from defectnet.model.train import finetune

    target = _shifted(make_synthetic(3, 60, seed=11), 0.85)
    path = write_training_file(target, tmp_path / "target.npz")
    res = finetune(trained.out_dir / "model.pt", path, tmp_path / "ft", epochs=15, lr=3e-3, freeze=("embed",),
                   progress=False, log=lambda s: None)
    report = json.loads((tmp_path / "ft" / "finetune_report.json").read_text())
    assert report["n_test"] > 10 and {"before", "after"} <= set(report)
    assert report["before"]["mae_at_pct"] == pytest.approx(
        trained_metrics_on(load_model(trained.out_dir / "model.pt"), target, res), rel=1e-5)
    # the fine-tuned model fits the new data better than the one it started from
    original = load_model(trained.out_dir / "model.pt")
    assert _train_loss(res.model, target, res) < 0.97 * _train_loss(original, target, res)
    before = original.state_dict()
    after = res.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("embed."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("conv."))
    with pytest.raises(DefectnetError, match="no parameter is named 'encoder'"):
        finetune(trained.out_dir / "model.pt", path, tmp_path / "ft2", epochs=1, freeze=("encoder",), progress=False,
                 log=lambda s: None)
    with pytest.raises(DefectnetError, match="cannot start"):
        finetune(trained.out_dir / "model.pt", path, tmp_path / "ft3", epochs=1, overrides={"spectrum_mode": "gpdos"},
                 progress=False, log=lambda s: None)


def _tensors_of(data, idx):
    return [torch.as_tensor(a[idx]) for a in (data.pristine, data.doped, data.composition, data.candidates, data.targets)]


def _train_loss(model, data, res):
    idx = np.array(json.loads((res.out_dir / "split.json").read_text())["train"])
    p, d, c, m, t = _tensors_of(data, idx)
    model.eval()
    with torch.no_grad():
        return float(model.loss(model(p, d, c, m), t, m)[0])


def trained_metrics_on(model, data, res):
    """MAE (at.%) of ``model`` on the fine-tuning run's held-out samples."""
    from defectnet.model.evaluate import predict_arrays

    import yaml

    from defectnet.model.dataset import with_candidates

    cfg = yaml.safe_load((res.out_dir / "config.yaml").read_text())
    data = with_candidates(data, cfg["distractors"], cfg["seed"] + 1)  # the lists the run was tested on
    idx = np.array(json.loads((res.out_dir / "split.json").read_text())["test_id"])
    o = predict_arrays(model, data.pristine[idx], data.doped[idx], data.composition[idx], data.candidates[idx])
    return compute_metrics(o["concentration"], data.targets[idx], data.candidates[idx])["mae_at_pct"]


def test_pool_distractors_come_from_the_hosts_own_dopants(data):
    from defectnet.model.dataset import draw_candidates, host_pools, with_candidates

    pools = host_pools(data)
    rng = np.random.default_rng(0)
    m = draw_candidates(data, rng, (1, 3))
    true = data.targets > 0
    assert np.all(m[true])  # every true dopant stays a candidate
    distractors = m & ~true
    room = (pools[data.host_id] & ~true).sum(1)
    sel = room > 0
    assert np.all(pools[data.host_id][sel][distractors[sel]])  # only elements present in other samples of that host
    n = distractors.sum(1)
    assert np.all(n[sel] <= 3) and np.all(n[sel] >= 1) and n.max() >= 2
    assert np.array_equal(m[~sel], (data.candidates | true)[~sel])  # nothing left in the pool: the stored list
    # a one-dopant dataset (the SiGe route): the pool is the dopant itself, so the stored distractor stays
    one = data.subset(np.arange(len(data)))
    j = int(np.argmax(true.sum(0)))
    one.targets = np.zeros_like(one.targets)
    one.targets[:, j] = 0.01
    one.candidates = np.zeros_like(one.candidates)
    one.candidates[:, [j, (j + 1) % one.candidates.shape[1]]] = True
    got = draw_candidates(one, np.random.default_rng(0), (1, 3))
    assert np.array_equal(got, one.candidates)
    a, b = with_candidates(data, "pool", 5), with_candidates(data, "pool", 5)
    assert np.array_equal(a.candidates, b.candidates)  # seeded
    assert not np.array_equal(a.candidates, with_candidates(data, "pool", 6).candidates)
    assert with_candidates(data, "stored", 5).candidates is data.candidates
    with pytest.raises(DefectnetError, match="distractors"):
        TrainConfig(distractors="random")


def test_a_fine_tuned_model_keeps_the_base_models_widening_for_unseen_hosts(trained, tmp_path):
    """A fine-tuning split has no held-out hosts: σ for unseen hosts scales with the base's ratio."""
    from defectnet.model.checkpoint import save_checkpoint
    from defectnet.model.train import _inherited_unseen_scale

    base = save_checkpoint(trained.model, tmp_path / "base.pt", metrics={"sigma_scale": 1.2, "sigma_scale_unseen": 2.4})
    assert _inherited_unseen_scale(base, 1.5) == pytest.approx(3.0)
    none = save_checkpoint(trained.model, tmp_path / "none.pt", metrics={"sigma_scale": 1.2,
                                                                        "sigma_scale_unseen": float("nan")})
    assert _inherited_unseen_scale(none, 1.5) is None


def test_evaluate_widens_sigma_on_every_host_the_model_was_not_trained_on(data, trained, tmp_path):
    from defectnet.model.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint
    from defectnet.model.evaluate import evaluate_checkpoint as evaluate

    ckpt = read_checkpoint(trained.out_dir / "model.pt")
    path = write_training_file(data, tmp_path / "d.npz")
    sigma = {}
    for unseen in (None, 3.0):
        model = model_from_checkpoint(ckpt)
        model.sigma_scale_unseen = None if unseen is None else unseen * float(model.sigma_scale)
        p = save_checkpoint(model, tmp_path / f"m{unseen}.pt", metrics=ckpt["metrics"],
                            train_config=ckpt["train_config"], data=ckpt["data"])
        sigma[unseen] = {s: evaluate(p, path, split=s, plots=False)["calibration"]["mean_sigma_at_pct"]
                         for s in ("id", "all")}
    assert sigma[3.0]["id"] == pytest.approx(sigma[None]["id"])  # training hosts: their own scale
    assert sigma[3.0]["all"] > 1.2 * sigma[None]["all"]  # the OOD and calibration hosts in "all" are widened


def test_evaluate_restricted_to_sample_ids(data, trained, tmp_path):
    from defectnet.model.evaluate import evaluate_checkpoint as evaluate

    path = write_training_file(data, tmp_path / "d.npz")
    every = evaluate(trained.out_dir / "model.pt", path, split="all", plots=False)
    some = data.sample_id[::3]
    part = evaluate(trained.out_dir / "model.pt", path, split="all", plots=False, sample_ids=some.tolist())
    assert part["n_samples"] == len(np.unique(some)) < every["n_samples"]
    # per-host and per-family breakdowns cover the evaluated samples (synthetic hosts are not library hosts)
    assert sum(v["n_samples"] for v in every["by_host"].values()) == every["n_samples"]
    assert set(every["by_host"]) == set(every["hosts"]) and set(every["by_family"]) == {"?"}
    with pytest.raises(DefectnetError, match="empty"):
        evaluate(trained.out_dir / "model.pt", path, split="all", plots=False, sample_ids=[-1])


def test_oversampled_hosts_appear_k_times_per_epoch(data, baby, tmp_path):
    import collections

    from defectnet.model.train import _oversampled

    split = split_by_host(data, baby.split)
    names = np.asarray(data.host_names, dtype=str)[data.host_id]
    host = names[split.train[0]]
    idx = _oversampled(data, split, {host: 3})
    counts = collections.Counter(idx.tolist())
    assert len(idx) == len(split.train) + 2 * int(np.sum(names[split.train] == host))
    assert all(counts[i] == (3 if names[i] == host else 1) for i in split.train)
    with pytest.raises(DefectnetError, match="no training samples: " + names[split.test_ood[0]]):
        train(data, replace(baby, oversample={names[split.test_ood[0]]: 2}), tmp_path, progress=False,
              log=lambda s: None)
    with pytest.raises(DefectnetError, match="integers >= 1"):
        replace(baby, oversample={host: 0})
    assert TrainConfig.from_dict(replace(baby, oversample={host: 2}).to_dict()).oversample == {host: 2}
