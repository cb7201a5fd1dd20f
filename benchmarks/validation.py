"""The `full`-tier validation set against the patch tier on the same samples (issue 4).

The validation store is made by the pipeline with the published protocol (relax the doped
64-atom cell, finite displacements of every atom)::

    defectnet generate --config examples/generate-validation.yaml --out data/validation-full.sqlite --workers 1

This script makes its twin with the patch tier — the same config and seed, hence the same
dopants on the same atoms — and compares them sample by sample:

* which samples each tier rejects for imaginary modes (a rejection by both is physical: the
  symmetric substituted structure is unstable; by the patch tier alone, an artefact of
  superposing patches);
* the defect-signature fidelity of every sample both keep,
  S = 1 − ‖g_patch − g_full‖₁ / ‖g_full − g_pristine‖₁ (1 = the full spectrum's change exactly);
* the shipped model's accuracy on the full-tier spectra against the patch-tier ones.

    python benchmarks/validation.py data/validation-full.sqlite

Writes ``benchmarks/results/validation/validation.{json,png}``. Rerunnable: the twin store resumes.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from defectnet.data.config import GenerateConfig
from defectnet.data.store import Store, sample_id, unpack_arrays
from defectnet.grid import EnergyGrid
from defectnet.spectrum import Spectrum

BINS = ((0.0, 0.05, "< 5 %"), (0.05, 0.15, "5–15 %"), (0.15, 1.0, "> 15 %"))


def twin_store(full_path: Path, out: Path, workers: int = 1) -> GenerateConfig:
    """Generate (or resume) the patch-tier twin of a store; return the full store's config."""
    from defectnet.data.generate import run_generate

    with Store(full_path) as s:
        cfg = GenerateConfig.from_dict(s.get_meta("config"))
    run_generate(replace(cfg, tier="patch"), out, workers=workers, processes=False, progress=True)
    return cfg


def _samples(path: Path) -> tuple[dict, dict, EnergyGrid]:
    with Store(path) as s:
        grid = EnergyGrid.from_dict(s.get_meta("grid"))
        pristine = {h["name"]: unpack_arrays(h["spectra"])["pristine"] for h in s.hosts("ok", blobs=True)}
        rows = {(r["host"], r["sample_index"]): r for r in s.samples(None, blobs=True)}
    return rows, pristine, grid


def compare(full_path: Path, patch_path: Path) -> tuple[list[dict], dict]:
    """Per-sample rows (status of both tiers, S) and the summary."""
    full, g0, grid = _samples(full_path)
    patch, _, _ = _samples(patch_path)
    rows = []
    for key in sorted(set(full) & set(patch)):
        f, p = full[key], patch[key]
        r = {"host": key[0], "sample": key[1], "dopants": [f"{el}@{site} {100 * c:.1f}%" for el, site, c, *_ in f["dopants"]],
             "total": float(sum(c for _, _, c, *_ in f["dopants"])),
             "full": f["status"], "patch": p["status"],
             "full_min_mev": f["min_frequency_mev"], "patch_min_mev": p["min_frequency_mev"]}
        if f["status"] == p["status"] == "ok":
            gf, gp, gh = (Spectrum.on_grid(grid, np.asarray(v, float)) for v in
                          (unpack_arrays(f["arrays"])["doped"], unpack_arrays(p["arrays"])["doped"], g0[key[0]]))
            r["S"] = gp.signature_fidelity(gf, gh)
        rows.append(r)
    summary = {"n": len(rows), "status": {}, "S_by_total": {}, "S_by_host": {}}
    for r in rows:
        k = f"full {r['full']} / patch {r['patch']}"
        summary["status"][k] = summary["status"].get(k, 0) + 1
    for lo, hi, label in BINS:
        s = [r["S"] for r in rows if "S" in r and lo <= r["total"] < hi]
        summary["S_by_total"][label] = _stats(s)
    for host in sorted({r["host"] for r in rows}):
        summary["S_by_host"][host] = _stats([r["S"] for r in rows if "S" in r and r["host"] == host])
    return rows, summary


def _stats(values) -> dict:
    v = np.asarray(values, float)
    if not len(v):
        return {"n": 0}
    return {"n": int(len(v)), "mean": float(v.mean()), "median": float(np.median(v)), "min": float(v.min())}


def model_on_both(full_path: Path, patch_path: Path, rows: list[dict], checkpoint=None) -> dict:
    """The shipped model's metrics on the samples both tiers keep: full-tier vs patch-tier spectra."""
    from defectnet.model.checkpoint import pretrained_path
    from defectnet.model.evaluate import evaluate_checkpoint

    keep = {sample_id(r["host"], r["sample"]) for r in rows if "S" in r}
    if not keep:
        return {}
    out = {}
    for label, path in (("full", full_path), ("patch", patch_path)):
        m = evaluate_checkpoint(checkpoint or pretrained_path(), path, split="all", plots=False, sample_ids=keep)
        out[label] = {"n_samples": m["n_samples"], "mae_at_pct": m["mae_at_pct"], "r2": m["r2"],
                      "f1": m["detection"]["f1"], "distractor_mean_at_pct": m["distractor_mean_at_pct"]}
    return out


def report(rows, summary, model) -> str:
    lines = ["| host | dopants | total | full | patch | S |", "|---|---|---|---|---|---|"]
    for r in rows:
        s = f"{r['S']:.2f}" if "S" in r else "—"
        lines.append(f"| {r['host']} | {', '.join(r['dopants'])} | {100 * r['total']:.1f} % | {r['full']} | {r['patch']} | {s} |")
    lines += ["", "| tiers | samples |", "|---|---|"] + [f"| {k} | {v} |" for k, v in sorted(summary["status"].items())]
    lines += ["", "| total concentration | n | mean S | median S | min S |", "|---|---|---|---|---|"]
    for label, st in summary["S_by_total"].items():
        lines.append(f"| {label} | {st['n']} | " + (" | ".join(f"{st[k]:.2f}" for k in ("mean", "median", "min"))
                                                     if st["n"] else "— | — | —") + " |")
    if model:
        keys = list(model["full"])
        lines += ["", "| shipped model on | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for label in ("full", "patch"):
            lines.append(f"| {label}-tier spectra | " + " | ".join(f"{model[label][k]:.3g}" for k in keys) + " |")
    return "\n".join(lines)


def _plot(rows, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for host in sorted({r["host"] for r in rows}):
        pts = [(100 * r["total"], r["S"]) for r in rows if r["host"] == host and "S" in r]
        if pts:
            ax.scatter(*zip(*pts), label=host, s=22)
    bad = [100 * r["total"] for r in rows if r["patch"] != "ok" and r["full"] == "ok"]
    if bad:
        ax.scatter(bad, np.zeros(len(bad)), marker="x", c="k", label="patch rejected, full ok")
    ax.set(xlabel="total dopant concentration (at.%)", ylabel="S (patch vs full, 64 atoms)", ylim=(-0.05, 1.05))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("full", type=Path, help="store made with examples/generate-validation.yaml")
    ap.add_argument("--patch", type=Path, help="its patch-tier twin (default: <full>-patch.sqlite; made or resumed)")
    ap.add_argument("--model", help="checkpoint to evaluate (default: the shipped model)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "validation" / "validation")
    args = ap.parse_args(argv)
    patch = args.patch or args.full.with_name(args.full.stem.replace("-full", "") + "-patch.sqlite")
    twin_store(args.full, patch)
    rows, summary = compare(args.full, patch)
    model = model_on_both(args.full, patch, rows, args.model)
    print(report(rows, summary, model))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"rows": rows, "summary": summary, "model": model}, indent=1))
    _plot(rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')} and .png")


if __name__ == "__main__":
    main()
