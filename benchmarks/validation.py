"""Every cheaper tier against the `full` tier on the same configurations (issues 4 and 36).

A `full`-tier validation set (the doped cell relaxed, every atom displaced: exact for the MLIP) is
made by the pipeline and committed as a training file::

    defectnet generate --config examples/generate-validation-216.yaml --out data/validation-216.sqlite --workers 1
    defectnet dataset export data/validation-216.sqlite --out datasets/validation/full-216-001.h5 --compact

This script makes its twins with each cheaper tier — the same config and seed, hence the same
dopants on the same atoms — and compares them sample by sample:

* which samples each tier keeps (a sample rejected by a tier alone has imaginary modes there: an
  artefact of superposing patches, or a cell `full` finds unstable too), and which it redrew (a
  patch-tier sample whose patch is unstable is drawn again under the same id: not compared);
* the defect-signature fidelity of each tier's spectrum against `full`,
  S = 1 − ‖g_tier − g_full‖₁ / ‖g_full − g_pristine‖₁ (1 = the full spectrum's change exactly);
* the prediction error of the shipped conditioned model and of the basis route (unmixing against
  the host's committed signature basis) on each tier's spectra, on the samples every tier keeps,
  beside answering 0 — so "the tier is good enough" is measured where it matters, in the answer.

    python benchmarks/validation.py datasets/validation/full-216-001.h5 --out benchmarks/results/validation/full-216
    python benchmarks/validation.py datasets/validation/full-001.h5 --tiers patch --hosts Si

Twin stores go to ``runs/validation/<stem>-<tier>.sqlite`` and resume. Writes
``<out>/validation.{json,md,png}`` with provenance.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BINS = ((0.0, 0.05, "< 5 %"), (0.05, 0.15, "5–15 %"), (0.15, 1.0, "> 15 %"))
TIERS = ("patch", "cluster", "local", "mass")


def full_config(data):
    """The generation config a training file or store was made with (its ``config`` attribute)."""
    from defectnet.data.config import GenerateConfig

    raw = data.attrs.get("config")
    if raw is None:
        raise SystemExit("validation: the full-tier file records no generation config")
    return GenerateConfig.from_dict(json.loads(raw) if isinstance(raw, str) else raw)


def twin(cfg, tier: str, hosts, out: Path, workers: int = 1):
    """Generate (or resume) the ``tier`` twin of a config, limited to ``hosts``; its training data (None: no sample kept)."""
    from defectnet.data.generate import run_generate
    from defectnet.model.dataset import load_training_file

    sel = replace(cfg.hosts, names=tuple(hosts), filter=None, all=False, files=(), structures={}) if hosts else cfg.hosts
    from defectnet.data.store import Store
    from defectnet.errors import DefectnetError

    run_generate(replace(cfg, tier=tier, hosts=sel), out, workers=workers, processes=False, progress=True)
    with Store(out, "r") as s:
        if next(s.samples("ok"), None) is None:  # the tier rejected every sample: nothing to export
            return None
    try:
        return load_training_file(out, export_dir=out.parent)
    except DefectnetError as exc:
        raise SystemExit(f"validation: {exc}") from None


def keyed(data, hosts=None) -> dict:
    """(host, sample_id) → row index of ``data``, optionally only of ``hosts``."""
    names = np.asarray(data.host_names, str)[data.host_id]
    return {(h, int(s)): i for i, (h, s) in enumerate(zip(names, data.sample_id)) if not hosts or h in hosts}


def fidelity(full, tiers: dict, hosts=None) -> list[dict]:
    """Per full-tier sample: its dopants, total, and S of every tier that keeps it (absent: rejected).

    A tier whose sample of the same id holds other dopants (the patch tier redraws a sample whose
    patch is unstable) is listed in ``redrawn`` and gets no S: only the same configuration compares.
    """
    from defectnet.spectrum import Spectrum

    grid, f_rows = full.grid, keyed(full, hosts)
    t_rows = {t: keyed(d, hosts) if d is not None else {} for t, d in tiers.items()}
    vocab = np.asarray(full.vocabulary)
    rows = []
    for key, i in sorted(f_rows.items()):
        true = np.flatnonzero(full.targets[i] > 0)
        r = {"host": key[0], "sample_id": key[1], "total": float(full.targets[i].sum()),
             "dopants": [f"{vocab[j]} {100 * full.targets[i, j]:.1f}%" for j in true], "S": {}}
        gf, g0 = (Spectrum.on_grid(grid, np.asarray(v, float)) for v in (full.doped[i], full.pristine[i]))
        for t, d in tiers.items():
            if key not in t_rows[t]:
                continue
            j = t_rows[t][key]
            if not np.allclose(d.targets[j], full.targets[i], atol=1e-6):  # a tier's unstable patch redrew the sample
                r.setdefault("redrawn", []).append(t)
                continue
            r["S"][t] = Spectrum.on_grid(grid, np.asarray(d.doped[j], float)).signature_fidelity(gf, g0)
        rows.append(r)
    return rows


def stats(values) -> dict:
    v = np.asarray(values, float)
    if not len(v):
        return {"n": 0}
    return {"n": int(len(v)), "mean": float(v.mean()), "median": float(np.median(v)), "min": float(v.min())}


def summarise(rows: list[dict], tiers) -> dict:
    """S by tier × total-concentration bin and by tier × host; kept counts per tier."""
    out = {"n": len(rows), "kept": {t: sum(t in r["S"] for r in rows) for t in tiers},
           "redrawn": {t: sum(t in r.get("redrawn", ()) for r in rows) for t in tiers}, "S_by_total": {}, "S_by_host": {}}
    for t in tiers:
        out["S_by_total"][t] = {label: stats([r["S"][t] for r in rows if t in r["S"] and lo <= r["total"] < hi])
                                for lo, hi, label in BINS}
        out["S_by_host"][t] = {h: stats([r["S"][t] for r in rows if t in r["S"] and r["host"] == h])
                               for h in sorted({r["host"] for r in rows})}
    return out


def answers(full, tiers: dict, rows: list[dict], bases_dir: str, model_path: str | None, seed: int) -> dict:
    """MAE, F1 and distractors of answering 0, the basis route and the conditioned model on each tier's
    spectra of the samples every tier keeps whose true dopants all have a basis curve."""
    from conditioned import scores, unmix_predictions

    from defectnet.model.checkpoint import load_model
    from defectnet.model.conditioned_train import predict_conditioned, read_through_bases
    from defectnet.model.dataset import with_candidates
    from defectnet.unmix import SignatureBasis, basis_files

    common = [(r["host"], r["sample_id"]) for r in rows if len(r["S"]) == len(tiers)]
    bases = {b.host: b for b in (SignatureBasis.load(f) for f in basis_files(bases_dir))}
    common = [k for k in common if k[0] in bases]
    out, model = {"hosts_without_basis": sorted({r["host"] for r in rows} - set(bases))}, None
    if not common:
        return out
    for label, data in {"full": full, **tiers}.items():
        rows_of = keyed(data)  # every tier keeps the common samples, so none is None here
        d = with_candidates(data.subset(np.array([rows_of[k] for k in common])), "pool", seed=seed)
        d, table, _ = read_through_bases(d, {h: bases[h] for h in set(k[0] for k in common)})
        idx, T, M = np.arange(len(d)), d.targets, d.candidates
        u = unmix_predictions(d, idx, bases, 0.0)
        res = {"zeros": scores(np.zeros_like(T), T, M), "basis route": scores(u["concentration"], T, M, u["sigma"])}
        if model_path:
            model = model or load_model(model_path, arch="conditioned", grid=d.grid, vocabulary=d.vocabulary)
            o = predict_conditioned(model, d, table, idx)
            res["conditioned model"] = scores(o["concentration"], T, M, o["sigma"])
        out[label] = {"n": int(len(d)), **res}
    return out


def report(rows, summary, result, tiers) -> str:
    lines = ["| host | dopants | total | " + " | ".join(f"S {t}" for t in tiers) + " |", "|---" * (3 + len(tiers)) + "|"]
    for r in rows:
        lines.append(f"| {r['host']} | {', '.join(r['dopants'])} | {100 * r['total']:.1f} % | "
                     + " | ".join(f"{r['S'][t]:.2f}" if t in r["S"] else "redrawn" if t in r.get("redrawn", ())
                                else "rejected" for t in tiers) + " |")
    lines += ["", "| tier | kept | " + " | ".join(f"mean S, {lab}" for *_, lab in BINS) + " |",
              "|---" * (2 + len(BINS)) + "|"]
    for t in tiers:
        cells = [f"{st['mean']:.2f} (n={st['n']})" if st["n"] else "—" for st in summary["S_by_total"][t].values()]
        lines.append(f"| {t} | {summary['kept'][t]} of {summary['n']} | " + " | ".join(cells) + " |")
    labels = [k for k in ("full", *tiers) if k in result]
    if labels:
        methods = list(result[labels[0]])[1:]
        lines += ["", f"Answers on the {result[labels[0]]['n']} samples every tier keeps (MAE at.% / F1 / distractor mean at.%):",
                  "", "| spectra | " + " | ".join(methods) + " |", "|---" * (1 + len(methods)) + "|"]
        for lab in labels:
            lines.append(f"| {lab} | " + " | ".join(
                f"{result[lab][m]['mae_at_pct']:.3f} / {result[lab][m]['f1']:.2f} / {result[lab][m]['distractor_mean_at_pct']:.3f}"
                for m in methods) + " |")
    if result.get("hosts_without_basis"):
        lines += ["", "No committed basis (not in the answers): " + ", ".join(result["hosts_without_basis"])]
    return "\n".join(lines)


def plot(rows, tiers, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for t in tiers:
        pts = [(100 * r["total"], r["S"][t]) for r in rows if t in r["S"]]
        if pts:
            ax.scatter(*zip(*pts), label=t, s=20)
    low = min([0.0] + [s for r in rows for s in r["S"].values()])
    ax.set(xlabel="total dopant concentration (at.%)", ylabel="S against full", ylim=(low - 0.05, 1.05))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("full", help="the full-tier set: a training file or store (e.g. datasets/validation/full-216-001.h5)")
    ap.add_argument("--tiers", default=",".join(TIERS), help="tiers to compare with full (comma-separated)")
    ap.add_argument("--hosts", default="", help="only these hosts (comma-separated)")
    ap.add_argument("--model", default=str(ROOT / "src/defectnet/pretrained/conditioned.pt"),
                    help="conditioned model whose answers are compared ('' for none)")
    ap.add_argument("--bases", default="datasets/reference/bases", help="signature bases of the basis route")
    ap.add_argument("--twins", type=Path, default=ROOT / "runs" / "validation", help="where the twin stores go")
    ap.add_argument("--seed", type=int, default=0, help="draws the candidate lists")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "validation")
    args = ap.parse_args(argv)

    from defectnet.model.dataset import load_training_file
    from defectnet.phonons.tiers import get_tier
    from defectnet.provenance import provenance

    tiers = [get_tier(t).name for t in args.tiers.split(",") if t]
    hosts = [h for h in args.hosts.split(",") if h]
    full = load_training_file(args.full)
    cfg, stem = full_config(full), Path(args.full).stem
    args.twins.mkdir(parents=True, exist_ok=True)
    twins = {t: twin(cfg, t, hosts, args.twins / f"{stem}-{t}.sqlite") for t in tiers}
    rows = fidelity(full, twins, set(hosts))
    summary = summarise(rows, tiers)
    result = answers(full, twins, rows, args.bases, args.model or None, args.seed)
    md = report(rows, summary, result, tiers)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    prov = provenance()
    (args.out / "validation.json").write_text(json.dumps(
        {"rows": rows, "summary": summary, "answers": result, "provenance": prov}, indent=1, default=float))
    (args.out / "validation.md").write_text(md + f"\n\nCommit {prov['commit']}, `{prov['command']}`, {prov['date']}.\n")
    plot(rows, tiers, args.out / "validation.png")
    print(f"wrote {args.out}/validation.json, .md and .png")


if __name__ == "__main__":
    main()
