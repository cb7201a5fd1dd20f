"""``defectnet train``, ``evaluate`` and ``finetune`` (registered in :data:`defectnet.cli.COMMANDS`).

Heavy modules (torch, sklearn, matplotlib) are imported inside ``run`` so ``--help`` stays instant.
"""

from __future__ import annotations

import json

from defectnet.output import Command, add_quiet_option


def _override(text: str):
    """``key=value`` with value parsed as YAML (``epochs=3``, ``arch=paper``, ``augment={noise: 0.01}``)."""
    import argparse

    import yaml

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


class Train(Command):
    name = "train"
    help = "train a DefectNet (or the paper's reference architecture) on a training file"

    def add_arguments(self, p):
        p.add_argument("--data", required=True, help="training file: .h5 / .npz (or a .sqlite store, exported on the fly)")
        p.add_argument("--config", default=None, help="YAML training config (configs/defectnet.yaml, paper.yaml, baby.yaml)")
        p.add_argument("--out", required=True, help="run directory (model.pt, metrics.jsonl, config.yaml, ...)")
        p.add_argument("--set", dest="overrides", action="append", type=_override, default=[], metavar="KEY=VALUE",
                       help="override a top-level config key, e.g. --set epochs=5 --set arch=paper (repeatable)")
        p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT/last.pt")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    def run(self, args):
        from defectnet.model.train import train_from_files

        result = train_from_files(args.data, args.config, args.out, overrides=dict(args.overrides) or None,
                                  resume=args.resume, progress=not args.quiet)
        m = result.metrics
        print(f"best epoch {m['best_epoch']} of {m['epochs_run']} ({m['stopped']}), {m['train_seconds']:.0f} s; "
              f"wrote {result.out_dir / 'model.pt'}")
        for part in ("val", "test_id", "test_ood"):
            if part in m:
                x = m[part]
                print(f"  {part:8s} MAE {x['mae_at_pct']:.3f} at.%  RMSE {x['rmse_at_pct']:.3f}  R² {x['r2']:.3f}  "
                      f"F1 {x['f1']:.3f}  distractor mean {x['distractor_mean_at_pct']:.3f} at.%")
        return 0


class Evaluate(Command):
    name = "evaluate"
    help = "evaluate a trained model on a split of a training file (metrics JSON + plots)"

    def add_arguments(self, p):
        p.add_argument("checkpoint", help="model.pt written by `defectnet train`")
        p.add_argument("--data", required=True, help="training file (.h5 / .npz / .sqlite)")
        p.add_argument("--split", default="ood", choices=["ood", "id", "val", "train", "all"],
                       help="ood: hosts never seen in training (default); id: unseen configurations of training hosts")
        p.add_argument("--out", required=True, help="output directory for metrics.json and the figures")
        p.add_argument("--no-plots", action="store_true")
        add_quiet_option(p, "the metrics JSON only (no tables, no file list)")

    def run(self, args):
        from defectnet.model.evaluate import evaluate_checkpoint

        m = evaluate_checkpoint(args.checkpoint, args.data, split=args.split, out_dir=args.out, plots=not args.no_plots)
        summary = {k: m[k] for k in ("n_samples", "mae_at_pct", "rmse_at_pct", "r2", "distractor_mean_at_pct")}
        summary["f1"] = m["detection"]["f1"]
        summary["f1_ge1pct"] = m["detection_ge1pct"]["f1"]
        summary["auc"] = m["detection"]["auc"]
        summary.update(m.get("calibration", {}))
        print(json.dumps(summary, indent=2, default=float))
        if args.quiet:
            return 0
        ref = m["reference"]
        print(f"knowing nothing scores MAE {ref['mae_zero_at_pct']:.3f} at.% (every prediction 0) and "
              f"F1 {ref['f1_all_present']:.3f} (every candidate present) on these candidates")
        print(f"{'family':20s} {'samples':>7s} {'MAE at.%':>8s} {'F1':>5s}")
        for fam, g in sorted(m["by_family"].items(), key=lambda kv: -kv[1]["n_samples"]):
            print(f"{fam:20s} {g['n_samples']:7d} {g['mae_at_pct']:8.3f} {g['f1']:5.2f}")
        print(f"wrote {args.out}/metrics.json (per host: by_host) and figures")
        return 0


class Finetune(Command):
    name = "finetune"
    help = "fine-tune a trained model on a small labelled set (held-out report before/after)"

    def add_arguments(self, p):
        p.add_argument("checkpoint", help="model.pt from `defectnet train`, or 'shipped' for the packaged model")
        p.add_argument("--data", required=True, help="labelled spectra: .sqlite store or .h5 / .npz training file")
        p.add_argument("--out", required=True, help="run directory (model.pt, finetune_report.json, ...)")
        p.add_argument("--epochs", type=int, default=40)
        p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (default 3e-4)")
        p.add_argument("--freeze", default="", help="comma-separated parameter prefixes to keep fixed, e.g. conv,to_tokens")
        p.add_argument("--set", dest="overrides", action="append", type=_override, default=[], metavar="KEY=VALUE",
                       help="override a training config key (repeatable)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    def run(self, args):
        from defectnet.model.checkpoint import pretrained_path
        from defectnet.model.train import finetune

        ckpt = pretrained_path() if args.checkpoint == "shipped" else args.checkpoint
        freeze = tuple(x.strip() for x in args.freeze.split(",") if x.strip())
        result = finetune(ckpt, args.data, args.out, epochs=args.epochs, lr=args.lr, freeze=freeze,
                          overrides=dict(args.overrides) or None, progress=not args.quiet)
        report = json.loads((result.out_dir / "finetune_report.json").read_text())
        print(f"fine-tuned on {report['n_train']} samples ({report['n_val']} val), {report['epochs_run']} epochs; "
              f"held-out test of {report['n_test']} samples:")
        for when in ("before", "after"):
            x = report[when]
            print(f"  {when:6s} MAE {x['mae_at_pct']:.3f} at.%  RMSE {x['rmse_at_pct']:.3f}  R² {x['r2']:.3f}  "
                  f"F1 {x['f1']:.3f}")
        print(f"wrote {result.out_dir / 'model.pt'} and finetune_report.json")
        return 0
