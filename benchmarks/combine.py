"""The model and analysis by synthesis merged (``defectnet.unmix.combine``), against each alone.

``predict --basis`` merges the model's answer with the unmixing when the host is one of the
model's training hosts. This scores the three answers on the committed spectra of every host
with a committed basis (``datasets/reference/bases``), in two groups:

* hosts the model trained on: their configurations it never saw (``--split id``, the
  model's own test split; ``val`` for a second look), where merging is what ``predict`` does;
* hosts it never saw (every spectrum), where ``predict`` keeps the unmixing alone; the merged
  row shows why.

Candidate lists are the true dopants plus 1-4 other elements of the host's pool (seeded, as
training draws them), GPDoS, the model's σ calibration for seen / unseen hosts as
``predict`` uses it. Spectra are patch-tier like the bases (identity and additivity, not
the MLIP against a crystal).

    python benchmarks/combine.py                                      # the shipped model, ~15 s
    python benchmarks/combine.py --split val --out benchmarks/results/combine/combine-val.json
    defectnet train --data datasets/reference,datasets/textbook --config configs/candidate-16k.yaml --out runs/ship16k
    python benchmarks/combine.py --model runs/ship16k/model.pt --out benchmarks/results/combine/combine-ship16k.json

Writes ``benchmarks/results/combine/combine.json``. ``combine-22host.json`` is the model shipped
before 2026-12-06 (``git show 1804ee6:src/defectnet/pretrained/defectnet.pt``), for which every
basis host is a never-seen host.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def merged_arrays(model_out: dict, unmix_out: dict, cand: np.ndarray, vocab) -> dict:
    """:func:`defectnet.unmix.combine` of two (n, V) answers, candidate by candidate."""
    from defectnet.unmix import combine

    keys = {"concentration": "concentration", "sigma": "uncertainty", "presence": "presence"}
    out = {k: np.zeros(cand.shape) for k in keys}
    for i, row in enumerate(cand):
        cols = np.flatnonzero(row)
        a, b = ({vocab[j]: {name: float(src[k][i, j]) for k, name in keys.items()} for j in cols}
                for src in (model_out, unmix_out))
        m = combine(a, b)
        for k, name in keys.items():
            out[k][i, cols] = [m[vocab[j]][name] for j in cols]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shipped", help="a checkpoint, or 'shipped'")
    ap.add_argument("--data", default=None, help="what the model was trained on (default: the committed files its "
                                                "checkpoint names, found under datasets/)")
    ap.add_argument("--basis-dir", default="datasets/reference/bases")
    ap.add_argument("--split", default="id", choices=("id", "val"), help="the training hosts' spectra to score")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "combine" / "combine.json"))
    args = ap.parse_args(argv)

    import torch

    from defectnet import load_model
    from defectnet.model.dataset import load_training_file, select_split, with_candidates
    from defectnet.model.evaluate import compute_metrics, predict_arrays
    from defectnet.model.network import host_calibration
    from defectnet.provenance import provenance
    from defectnet.unmix import SignatureBasis, basis_files, unmix_arrays

    torch.set_num_threads(1)
    model = load_model(None if args.model == "shipped" else args.model)
    info = model.meta.get("data") or {}
    trained = set(info.get("train_hosts") or ())
    if args.data is None:  # the split is rebuilt from exactly these files: later chunks would change it
        found = {f.name: f.relative_to(ROOT) for f in sorted((ROOT / "datasets").glob("*/*.h5"))}
        args.data = ",".join(str(found[n.strip()]) for n in str(info.get("source", "")).split(","))
    data = load_training_file(",".join(str(ROOT / f) for f in args.data.split(",")))
    bases = {q.stem: q for q in basis_files(args.basis_dir)}
    # the split needs the very data the model trained on; only asked for when a training host has a basis
    seen_idx = select_split(data, info, args.split) if trained & set(bases) else np.zeros(0, int)
    data = with_candidates(data, (model.meta.get("train_config") or {}).get("distractors", "pool"), 1)
    names, vocab = data.host_names[data.host_id], np.asarray(data.vocabulary)
    skip = set(info.get("calib_hosts") or ()) | (set(bases) - set(names))  # calibration hosts tuned the σ
    P, D = data.spectra(model.meta.get("spectrum_mode", "total"))
    groups = {"training hosts": [], "never-seen hosts": []}
    t0 = time.perf_counter()
    for host, path in bases.items():
        if host in skip:
            continue
        basis = SignatureBasis.load(path)
        known = set(basis.elements) | set(basis.failed)
        seen = host in trained
        rows = seen_idx[names[seen_idx] == host] if seen else np.flatnonzero(names == host)
        rows = rows[[set(vocab[data.candidates[i]]) <= known for i in rows]]
        if not len(rows):
            continue
        net = predict_arrays(host_calibration(model, seen=seen), P[rows], D[rows], data.composition[rows],
                             data.candidates[rows])
        unm = unmix_arrays(data.pristine_gpdos[rows], data.doped_gpdos[rows], data.candidates[rows], vocab, basis,
                           kind="gpdos")
        groups["training hosts" if seen else "never-seen hosts"].append((rows, net, unm))
    results = {"model": args.model, "split": args.split, "data": args.data, "basis_dir": args.basis_dir,
               "seconds": time.perf_counter() - t0, "groups": {}, "provenance": provenance()}
    print(f"{'hosts':18s} {'answer':10s} {'n':>6s} {'MAE at.%':>9s} {'F1':>6s} {'F1≥1%':>6s} {'distr.':>7s} {'±1σ cov.':>8s}")
    for group, parts in groups.items():
        if not parts:
            continue
        rows = np.concatenate([r for r, _, _ in parts])
        cat = lambda k, j: np.concatenate([p[j][k] for p in parts])  # noqa: E731
        answers = {name: {k: cat(k, j) for k in ("concentration", "sigma", "presence")}
                   for name, j in (("model", 1), ("unmix", 2))}
        answers["merged"] = merged_arrays(answers["model"], answers["unmix"], data.candidates[rows], vocab)
        entry = {"hosts": sorted(set(names[rows])), "n_samples": len(rows), "answers": {}}
        for name, a in answers.items():
            m = compute_metrics(a["concentration"], data.targets[rows], data.candidates[rows], sigma=a["sigma"],
                                presence=a["presence"])
            e = {"mae_at_pct": m["mae_at_pct"], "r2": m["r2"], "f1": m["detection"]["f1"],
                 "f1_ge1pct": m["detection_ge1pct"]["f1"], "distractor_mean_at_pct": m["distractor_mean_at_pct"],
                 "coverage_1sigma": m["calibration"]["coverage_1sigma_true"]}
            entry["answers"][name] = e
            print(f"{group:18s} {name:10s} {len(rows):6d} {e['mae_at_pct']:9.3f} {e['f1']:6.3f} {e['f1_ge1pct']:6.3f} "
                  f"{e['distractor_mean_at_pct']:7.3f} {e['coverage_1sigma']:8.2f}")
        results["groups"][group] = entry
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
