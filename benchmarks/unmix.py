"""Analysis by synthesis against DefectNet on hosts it never saw (``defectnet.unmix``).

For each host, the signature basis of every element that appears among its samples'
candidates is simulated with the settings the dataset was generated with (potential, tier,
supercell, broadening; the site each true dopant was placed on, from the generation plan),
and each committed sample of the host is unmixed against it. Compared on the same samples:

* ``unmix (METHOD, gpdos)``: :func:`defectnet.unmix.unmix` on GPDoS with each of its
  methods (``auto``, the default, on PDoS too);
* ``unmix (linear, fitted basis)``: slopes fitted by ridge least squares from the host's
  *other* samples (5-fold): what unmixing can do when the basis is exact in the mean;
* ``shipped DefectNet``: the packaged model (the four default hosts are outside its training hosts;
  since 2026-12-06 the chunks' basis hosts are inside them: see ``benchmarks/combine.py``);
* the no-knowledge references: every concentration 0 (MAE), every candidate present (F1).

Spectra here are simulated with the same engine as the basis, so this measures identity and
the linearity of the signatures, not the MLIP's error against a measurement.

    python benchmarks/unmix.py                       # InAs, NaCl, HgTe, CuI (~50 min on one core)
    python benchmarks/unmix.py --hosts GaAs --data datasets/textbook
    python benchmarks/unmix.py --hosts ZnSe,GaSb,KBr --basis-dir runs/unmix-basis-val \
        --out benchmarks/results/unmix/unmix-fresh-hosts.json    # hosts the 1σ factor was not fitted on
    python benchmarks/unmix.py --hosts InAs --placements 2 --basis-dir runs/unmix-basis-p2 \
        --out benchmarks/results/unmix/unmix-placements2.json    # two placements averaged per concentration
    python benchmarks/unmix.py --hosts all --basis-dir datasets/reference/bases --candidates pool \
        --out benchmarks/results/unmix/unmix-store-bases.json    # every host a chunk has a basis for (`dataset bases`)
    python benchmarks/unmix.py --data datasets/validation --hosts Si,GaAs,ZnS,CdTe,SrO --tier patch \
        --basis-dir runs/unmix-basis-64 --out benchmarks/results/unmix/unmix-validation.json
        # a patch-tier basis against full-tier spectra (64-atom cells, every atom displaced)

Writes ``benchmarks/results/unmix/unmix.json`` (and one basis per host under ``--basis-dir``,
reused when the command is run again).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def scores(pred, true, cand, score=None, sigma=None) -> dict:
    """MAE / F1 at 0.1 at.% / rank AUC over candidate entries (:func:`compute_metrics`); (n, V) atomic fractions.

    ``score`` (n, V) ranks the candidates for the AUC (default: ``pred``). With ``sigma``
    (n, V), the share of true dopants within ±1σ of their prediction (68 % if calibrated).
    """
    from defectnet.model.evaluate import roc_auc, compute_metrics  # the model's own definitions, for the targets

    m = compute_metrics(pred, true, cand, sigma=sigma)
    p, t = pred[cand], true[cand]
    big = (t > 0) & (t >= 0.03)
    out = {"mae_at_pct": m["mae_at_pct"], "f1": m["detection"]["f1"],
           "auc": roc_auc(p if score is None else score[cand], t > 0),
           "median_ratio_ge3pct": float(np.median(p[big] / t[big])) if big.any() else None,
           "distractor_mean_at_pct": m["distractor_mean_at_pct"], "f1_ge1pct": m["detection_ge1pct"]["f1"]}
    if "calibration" in m:
        out["coverage_1sigma"] = m["calibration"]["coverage_1sigma_true"]
    return out


def site_of_elements(name, atoms, cfg, indices) -> dict:
    """{element: host site} each element was placed on in the generation plan (most often), for
    the elements the plan places; others (distractors only) get the recommender's best site."""
    from defectnet.data.plan import HostInput, plan_host
    from defectnet.recommend import DopantRecommender

    kw = {"vocabulary": list(cfg.sampler.vocabulary)} if getattr(cfg.sampler, "vocabulary", None) else {}
    rec = DopantRecommender(n_max=cfg.sampler.n_recommend, **kw).fit()
    plan = plan_host(HostInput(name, atoms, atoms.get_chemical_formula(mode="metal")), cfg, rec, list(indices))
    placed = collections.defaultdict(collections.Counter)
    for job in plan.jobs.values():
        for el, site, _ in job.dopants:
            placed[el][site] += 1
    best = {}
    for r in sorted(plan.records or [], key=lambda r: -r.score):
        best.setdefault(r.dopant, r.site)
    return {el: c.most_common(1)[0][0] for el, c in placed.items()} | {el: s for el, s in best.items() if el not in placed}


def fitted_basis_prediction(delta, true, cand, sw, folds: int = 5, seed: int = 0):
    """Unmixing with signatures fitted by ridge least squares from the other folds' samples.

    The ridge (1e-3 of the mean diagonal) keeps the fit determined when a host has fewer
    samples than candidate elements (InAs: 18 samples, 17 elements).
    """
    from scipy.optimize import nnls

    n = len(delta)
    fold = np.random.default_rng(seed).permutation(n) % folds
    pred = np.zeros_like(true)
    cols = np.flatnonzero(cand.any(0))
    for f in range(folds):
        tr, te = fold != f, fold == f
        X = true[tr][:, cols]
        G = X.T @ X
        S = np.linalg.solve(G + 1e-3 * np.trace(G) / len(cols) * np.eye(len(cols)), X.T @ (delta[tr] * sw))
        for i in np.flatnonzero(te):
            k = [j for j, c in enumerate(cols) if cand[i, c]]
            c, _ = nnls(S[k].T, delta[i] * sw)
            pred[i, cols[k]] = c
    return pred


def sigma_scale(parts, hosts) -> dict:
    """The factor on unmix's 1σ that covers 68 % of the true dopants (|error| ≤ f·σ), over all
    hosts and, to test it, fitted on all hosts but one and applied to that one."""
    from defectnet.unmix import SIGMA_SCALE

    def ratios(part):  # |error| / raw σ for the true dopants of one host's samples
        pred, true, cand, _, sigma = part
        pos = cand & (true > 0)
        return np.abs(pred - true)[pos] / np.maximum(sigma[pos] / SIGMA_SCALE, 1e-12)

    z = [ratios(p) for p in parts]
    scale = float(np.quantile(np.concatenate(z), 0.68))
    held_out = {}
    for i, host in enumerate(hosts):
        f = float(np.quantile(np.concatenate(z[:i] + z[i + 1:]), 0.68)) if len(hosts) > 1 else scale
        held_out[host] = {"scale_from_others": f, "coverage": float(np.mean(z[i] <= f))}
    cov = np.mean([v["coverage"] for v in held_out.values()])
    return {"scale": scale, "in_use": SIGMA_SCALE, "coverage_in_use": float(np.mean(np.concatenate(z) <= SIGMA_SCALE)),
            "held_out": held_out,
            "summary": f"scale {scale:.2f} (in use {SIGMA_SCALE:g}, covering "
                       f"{np.mean(np.concatenate(z) <= SIGMA_SCALE):.2f}); fitted on the other hosts, "
                       f"mean held-out coverage {cov:.2f} ("
                       + ", ".join(f"{h} {v['coverage']:.2f}" for h, v in held_out.items()) + ")"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", default="InAs,NaCl,HgTe,CuI", help="comma-separated, or 'all': every host of --data "
                                                                 "with a basis in --basis-dir")
    ap.add_argument("--data", default="datasets/reference")
    ap.add_argument("--concentrations", default="0.01,0.05,0.15", help="basis atomic fractions")
    ap.add_argument("--placements", type=int, default=1, help="random placements averaged per basis concentration")
    ap.add_argument("--basis-dir", default="runs/unmix-basis")
    ap.add_argument("--tier", default=None, help="simulate the basis with this tier instead of the data's "
                                                 "(e.g. patch against the full-tier validation set)")
    ap.add_argument("--candidates", choices=("stored", "pool"), default="stored",
                    help="stored: the candidate lists of the data (distractors from the recommender); pool: true "
                         "dopants plus distractors from the host's pool, as training and the accuracy benchmark draw "
                         "them (what the bases of `defectnet dataset bases` cover)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the pool candidate lists")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "unmix" / "unmix.json"))
    args = ap.parse_args(argv)

    import torch

    from defectnet import load_model
    from defectnet.data.config import GenerateConfig
    from defectnet.hosts import load_host
    from defectnet.model.dataset import load_training_file, with_candidates
    from defectnet.phonons.host import compute_pristine
    from defectnet.provenance import provenance
    from defectnet.unmix import METHODS, BasisConfig, SignatureBasis, basis_files, signature_basis, unmix_arrays

    torch.set_num_threads(1)
    from defectnet.data.training_file import training_file_hosts, training_file_paths

    files = training_file_paths(args.data)
    model = load_model()
    rows, all_pred = [], collections.defaultdict(list)
    owner = {}  # complete host -> the first file that records it
    for f in files:
        for h in training_file_hosts(f)[0]:
            owner.setdefault(h, f)
    hosts_run = ([p.stem for p in basis_files(args.basis_dir)  # not the bases of hosts still generating
                  if not p.name.startswith(".") and p.stem in owner]
                 if args.hosts == "all" else [h.strip() for h in args.hosts.split(",") if h.strip()])
    ran, loaded = [], {}
    for host in hosts_run:
        src = owner.get(host)
        if src is None:
            raise SystemExit(f"{args.data} holds no complete host {host}")
        if src not in loaded:  # the chunk's own generation config: sites, tier, supercell; loaded once per file
            loaded[src] = with_candidates(load_training_file(src), args.candidates, args.seed + 1)
        data = loaded[src]
        cfg = GenerateConfig.from_dict(data.attrs["config"])
        sim = replace(cfg.simulation_config(), tier=args.tier or cfg.tier)
        bcfg = BasisConfig(concentrations=tuple(float(x) for x in args.concentrations.split(",")), simulation=sim,
                           placements=args.placements)
        names = data.host_names[data.host_id]
        sw = np.sqrt(data.grid.widths)
        vocab = list(data.vocabulary)
        idx = np.flatnonzero(names == host)
        if not len(idx):  # complete, but its samples are in an earlier chunk
            continue
        ran.append(host)
        print(f"{host}: {len(idx)} samples in {src.name}", flush=True)
        true, cand = data.targets[idx].astype(float), data.candidates[idx]
        elements = [vocab[j] for j in np.flatnonzero(cand.any(0))]
        path = Path(args.basis_dir) / f"{host}.npz"
        t0 = time.perf_counter()
        if path.exists():
            basis = SignatureBasis.load(path)
            # a sample with every pool element present keeps its stored (recommender) distractors, which a
            # pool basis does not hold: it is scored on its true dopants alone rather than dropped
            known = np.isin(vocab, list(basis.elements) + list(basis.failed))
            outside = (cand & ~known).any(1)
            if outside.any():
                print(f"{host}: {outside.sum()} samples lose distractors outside the basis", flush=True)
                cand = cand & (known | (true > 0))
        else:
            h = load_host(host)
            sites = site_of_elements(host, h.to_atoms(), cfg, range(cfg.samples_per_host))
            specs = [f"{el}@{sites[el]}" if el in sites else el for el in elements]
            print(f"{host}: simulating the basis of {len(specs)} candidates: {', '.join(specs)}", flush=True)
            pristine = compute_pristine(h.to_atoms(), sim.host, grid=sim.grid, progress=False, **sim.broadening())
            basis = signature_basis(pristine.atoms, specs, bcfg, pristine_host=pristine, progress=True,
                                    checkpoint=path.with_suffix(".cells.npz"))
            basis.save(path)
        t_basis = time.perf_counter() - t0
        preds = {}
        spectra = {"pdos": (data.pristine, data.doped), "gpdos": (data.pristine_gpdos, data.doped_gpdos)}
        for (kind, (P, D)), method in itertools.product(spectra.items(), METHODS):
            if kind == "pdos" and method != "auto":
                continue
            out = unmix_arrays(P[idx], D[idx], cand, vocab, basis, kind=kind, method=method)
            preds[f"unmix ({method}, {kind})"] = (out["concentration"], out["presence"], out["sigma"])
        preds["unmix (linear, fitted basis, pdos)"] = (fitted_basis_prediction(data.doped[idx] - data.pristine[idx], true,
                                                                        cand, sw), None, None)
        mode = model.meta.get("spectrum_mode", "total")
        P, D = (data.pristine_gpdos, data.doped_gpdos) if mode == "gpdos" else (data.pristine, data.doped)
        with torch.no_grad():
            o = model(torch.from_numpy(P[idx]), torch.from_numpy(D[idx]), torch.from_numpy(data.composition[idx]),
                      torch.from_numpy(cand))
        preds["shipped DefectNet"] = (o["concentration"].numpy().astype(float), o["presence"].numpy().astype(float),
                                      o["sigma"].numpy().astype(float))
        preds["every concentration 0"] = (np.zeros_like(true), None, None)
        preds["every candidate present (1 at.%)"] = (np.where(cand, 0.01, 0.0), None, None)
        for label, (pred, score, sigma) in preds.items():
            rows.append({"host": host, "method": label, "n_samples": len(idx),
                         **scores(pred, true, cand, score, sigma)})
            all_pred[label].append((pred, true, cand, score, sigma))
        rows[-len(preds)]["basis_seconds"] = t_basis
    for label, parts in all_pred.items():
        cat = [np.concatenate([p[j] for p in parts]) if parts[0][j] is not None else None for j in range(5)]
        rows.append({"host": "all", "method": label, "n_samples": len(cat[1]), **scores(*cat)})
    calibration = sigma_scale(all_pred["unmix (auto, gpdos)"], ran)
    hw = max(6, *(len(h) for h in ran))
    print(f"\n{'host':{hw}s} {'method':34s} {'MAE at.%':>9s} {'F1':>6s} {'AUC':>6s} {'pred/true≥3%':>13s} {'distr.':>7s}"
          f" {'±1σ cov.':>8s} {'F1≥1%':>6s}")
    for r in rows:
        ratio = "–" if r["median_ratio_ge3pct"] is None else f"{r['median_ratio_ge3pct']:.2f}"
        cov = f"{r['coverage_1sigma']:.2f}" if "coverage_1sigma" in r else "–"
        print(f"{r['host']:{hw}s} {r['method']:34s} {r['mae_at_pct']:9.3f} {r['f1']:6.3f} {r['auc']:6.3f} {ratio:>13s} "
              f"{r['distractor_mean_at_pct']:7.3f} {cov:>8s} {r['f1_ge1pct']:6.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    print(f"\n±1σ of unmix (auto, gpdos): {calibration['summary']}")
    Path(args.out).write_text(json.dumps({"hosts": args.hosts, "data": args.data, "candidates": args.candidates,
                                          "basis": bcfg.to_dict(),
                                          "rows": rows, "sigma_calibration": calibration,
                                          "provenance": provenance()}, indent=1, default=float))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
