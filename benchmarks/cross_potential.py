"""Reading spectra of a second potential against the default potential's bases (issues 33 and 39).

A measured spectrum's dopant modes are not where the basis' potential puts them (``benchmarks/lvm.py``).
The closest stand-in offline: spectra simulated with 7net-l3i5
(``benchmarks/configs/cross-potential-l3i5.yaml``) read against the committed 7net-0 bases of the
same hosts, optionally through an instrument resolution and counting noise. On the same hosts,
the same methods read the reference data's 7net-0 spectra (same potential) for the ratio.

Methods: ``unmix`` (the basis as simulated), ``unmix, stretch 0.2`` (each candidate's local modes
free to move ±20 %), and, with ``--model``, the conditioned network of ``benchmarks/conditioned.py``.
Besides MAE, F1 and distractors: the share of the signature's variance each unmixing explains.

    python benchmarks/cross_potential.py --data data/xpot.sqlite                     # the store as it stands
    python benchmarks/cross_potential.py --data datasets/cross-potential --noise 0.02 --fwhm 2
    python benchmarks/cross_potential.py --data datasets/validation --label "full tier" --same '' \
        --model src/defectnet/pretrained/conditioned.pt --out benchmarks/results/validation-bases

Writes ``benchmarks/results/cross_potential/cross_potential.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def load_model(path, data):
    from defectnet.model.checkpoint import load_model as load

    return load(path, arch="conditioned", grid=data.grid, vocabulary=data.vocabulary)


def degrade(data, fwhm_mev: float, noise: float, seed: int):
    """``data`` with both spectra broadened by ``fwhm_mev`` (Gaussian) and the doped one given counting noise."""
    import torch

    from defectnet.model.augment import Augment

    if fwhm_mev <= 0 and noise <= 0:
        return data
    aug = Augment(noise=noise, extra_fwhm_mev=(fwhm_mev, fwhm_mev), probability=1.0)
    out = data.subset(np.arange(len(data)))
    p, d = aug(torch.from_numpy(data.pristine_gpdos), torch.from_numpy(data.doped_gpdos), data.grid,
               np.random.default_rng(seed))
    out.pristine_gpdos, out.doped_gpdos = p.numpy(), d.numpy()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the second potential's spectra: a store or training file(s)")
    ap.add_argument("--same", default="datasets/reference,datasets/textbook",
                    help="the default potential's spectra of the same hosts ('' for none)")
    ap.add_argument("--label", default="second potential", help="what --data holds, for the table")
    ap.add_argument("--bases", default="datasets/reference/bases")
    ap.add_argument("--model", default=None, help="a conditioned model from benchmarks/conditioned.py")
    ap.add_argument("--fwhm", type=float, default=0.0, help="extra Gaussian broadening of both spectra, meV")
    ap.add_argument("--noise", type=float, default=0.0, help="relative counting noise on the doped spectrum")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cross_potential")
    args = ap.parse_args(argv)

    from conditioned import scores, unmix_predictions

    from defectnet.model.conditioned import BasisTable
    from defectnet.model.conditioned_train import predict_conditioned, read_through_bases
    from defectnet.model.dataset import load_training_file, with_candidates
    from defectnet.provenance import provenance
    from defectnet.unmix import SignatureBasis, basis_files

    bases = {b.host: b for b in (SignatureBasis.load(f) for f in basis_files(args.bases))}
    sets = {}
    for label, path in ((args.label, args.data), ("same potential", args.same)):
        if not path:
            continue
        d = with_candidates(load_training_file(path), "pool", seed=args.seed)
        sets[label] = d
    hosts = sorted(set(np.asarray(sets[args.label].host_names, str)[sets[args.label].host_id]) & set(bases))
    model = None
    result = {"hosts": hosts, "fwhm_mev": args.fwhm, "noise": args.noise, "rows": {}, "explained": {}}
    for label, d in sets.items():
        names = np.asarray(d.host_names, str)[d.host_id]
        keep = np.flatnonzero(np.isin(names, hosts))
        d = degrade(d.subset(keep), args.fwhm, args.noise, args.seed)
        d, _, _ = read_through_bases(d, {h: bases[h] for h in hosts})
        idx = np.arange(len(d))
        T, M = d.targets, d.candidates
        result["rows"][f"{label} | zeros"] = scores(np.zeros_like(T), T, M) | {"n": int(len(d))}
        registered = registered_bases(d, {h: bases[h] for h in hosts})
        left = {}  # each fit's share of ‖Δ‖ unexplained, by (registered?, stretch)
        for method, use, stretch in (("unmix", bases, 0.0), ("unmix, stretch 0.2", bases, 0.2),
                                     ("unmix, registered", registered, 0.0),
                                     ("unmix, registered, stretch 0.2", registered, 0.2)):
            u = unmix_predictions(d, idx, use, stretch)
            result["rows"][f"{label} | {method}"] = scores(u["concentration"], T, M, u["sigma"]) | {"n": int(len(d))}
            left[use is registered, stretch] = u["residual_fraction"]
        if args.model:
            model = model or load_model(args.model, d)
            for method, use in (("conditioned", bases), ("conditioned, registered", registered)):
                o = predict_conditioned(model, d, BasisTable(use, d.vocabulary, d.grid), idx)
                result["rows"][f"{label} | {method}"] = scores(o["concentration"], T, M, o["sigma"]) | {"n": int(len(d))}
        result["explained"][label] = explained(left[False, 0.0], left[False, 0.2]) | {
            f"registered, {k}": v for k, v in explained(left[True, 0.0], left[True, 0.2]).items()}
    result["provenance"] = provenance()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cross_potential.json").write_text(json.dumps(result, indent=1, default=float))
    (args.out / "cross_potential.md").write_text(table_md(result))
    print(table_md(result))


def registered_bases(d, bases) -> dict:
    """Each host's basis registered onto that host's pristine spectrum in ``d`` (the first sample's:
    a measurement has one)."""
    from defectnet.registration import registered

    names = np.asarray(d.host_names, str)[d.host_id]
    return {h: registered(b, d.pristine_gpdos[np.flatnonzero(names == h)[0]], kind="gpdos")
            for h, b in bases.items() if np.any(names == h)}


def explained(rigid, stretched) -> dict:
    """Median share of the signature's variance the unmixing explains (1 − residual²), rigid and with
    stretch 0.2, from each fit's ``residual_fraction`` (n,), and the share of spectra whose answer
    ``predict`` would flag as leaving the signature unexplained (:func:`defectnet.checks.unexplained_warning`)."""
    from defectnet.checks import unexplained_warning

    fractions = {"rigid": np.asarray(rigid), "stretch 0.2": np.asarray(stretched)}
    out = {k: float(np.median(1 - v ** 2)) for k, v in fractions.items()}
    return out | {f"warned, {k}": float(np.mean([unexplained_warning({"residual_fraction": x}) is not None for x in v]))
                  for k, v in fractions.items()}


def table_md(r: dict) -> str:
    lines = [f"# Second potential's spectra against the default potential's bases ({len(r['hosts'])} hosts)", "",
             f"Hosts: {', '.join(r['hosts'])}. Extra broadening {r['fwhm_mev']} meV FWHM, noise {r['noise']}.", "",
             "| spectra | method | n | MAE (at.%) | F1 (≥1 at.%) | distractor mean (at.%) | ±1σ coverage |",
             "|---|---|---|---|---|---|---|"]
    for key, m in r["rows"].items():
        spectra, method = key.split(" | ")
        lines.append(f"| {spectra} | {method} | {m['n']} | {m['mae_at_pct']:.3f} | {m['f1_ge1pct']:.3f} | "
                     f"{m['distractor_mean_at_pct']:.3f} | {m.get('coverage_1sigma', float('nan')):.2f} |")
    lines += ["", "Median share of the signature's variance explained by the unmixing, and the share of spectra "
              "whose answer predict flags as leaving the signature unexplained (warned):", ""]
    lines += [f"- {label}: " + ", ".join(f"{k} {x:.2f}" for k, x in v.items()) for label, v in r["explained"].items()]
    p = r["provenance"]
    lines += ["", f"Commit {p['commit']}, `{p['command']}`, {p['date']}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
