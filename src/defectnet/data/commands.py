"""``defectnet generate`` and ``defectnet dataset {info,check,export,bases,umap}``.

Both are :class:`defectnet.output.Command` subclasses; each imports its heavy modules inside
``run`` so ``defectnet --help`` stays instant, and calls the same library functions the
tests call.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from defectnet.errors import DefectnetError
from defectnet.output import STDOUT, Command, add_json_option, add_quiet_option, emit_json, positive_int


def _retry_reasons(text: str | None) -> bool | list[str]:
    if text is None:
        return False
    reasons = [r.strip() for r in text.split(",") if r.strip()]
    return True if reasons in ([], ["all"]) else reasons


class GenerateCommand(Command):
    name = "generate"
    help = "generate (or resume) a dataset of pristine/doped spectra into an SQLite store, in parallel on Dask"

    def add_arguments(self, p):
        p.add_argument("--config", required=True, help="YAML generation config (see examples/generate-small.yaml)")
        p.add_argument("--out", required=True, help="the SQLite store; an existing one is resumed (finished rows are kept)")
        where = p.add_mutually_exclusive_group()
        where.add_argument("--workers", type=positive_int, default=None,
                           help="worker processes of a local Dask cluster (default: one per core)")
        where.add_argument("--scheduler", default=None,
                           help="address of an existing Dask scheduler, e.g. tcp://host:8786 (SLURM/PBS: dask-jobqueue)")
        p.add_argument("--retry-failed", nargs="?", const="all", default=None, metavar="REASONS",
                       help="recompute rows that failed before: all, or only these comma-separated reasons "
                            "(e.g. imaginary_modes, after raising placement_attempts)")
        p.add_argument("--skip-in", default=None, metavar="FILES",
                       help="training files exported from an earlier store of this config (comma-separated, or a "
                            "directory): their samples, and those they record as failed, are not computed again")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    def run(self, args):
        from defectnet.data.config import load_config
        from defectnet.data.generate import run_generate

        config = load_config(args.config)
        summary = run_generate(config, args.out, workers=args.workers, scheduler=args.scheduler,
                               progress=not args.quiet, retry_failed=_retry_reasons(args.retry_failed),
                               skip_in=args.skip_in or ())
        print(summary.line())
        w = summary.writer
        if w.get("rows"):
            print(f"writer: {w['rows']} rows in {w['transactions']} transactions, {w['seconds']:.2f} s")
        return 0


class DatasetCommand(Command):
    name = "dataset"
    help = "inspect, check, export or plot a generated dataset store"

    def add_arguments(self, p):
        sub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
        info = sub.add_parser("info", help="counts, failures by reason, hosts, timings", description="counts, failures "
                              "by reason, hosts and timings of a store")
        info.add_argument("store")
        add_json_option(info, "the summary")
        info.add_argument("--check", action="store_true", help="also run the integrity check")
        check = sub.add_parser("check", help="integrity check (exit status 1 on problems)",
                               description="integrity check of a store, labels checked against the placement it "
                                           "stores; or of a training file (.h5, .npz), each concentration a whole "
                                           "number of atoms of its supercell (exit status 1 on problems)")
        check.add_argument("store", help="a generation store (.sqlite) or a training file (.h5, .npz)")
        check.add_argument("--quick", action="store_true", help="skip decoding every blob")
        exp = sub.add_parser("export", help="write the training file (HDF5 or NPZ)",
                             description="write the successful samples as a training file (HDF5 or NPZ)")
        exp.add_argument("store")
        exp.add_argument("--out", required=True, help="output .h5 or .npz")
        exp.add_argument("--format", choices=("h5", "npz"), default=None, help="default: from the suffix")
        exp.add_argument("--compact", action="store_true",
                         help="host spectra once, defect signatures as float16 (HDF5; ~1.7x smaller here, ~1.3 kB per sample; for committing)")
        exp.add_argument("--skip-in", default="", metavar="PATHS",
                         help="leave out samples already in these training files or directories (comma-separated), "
                              "e.g. datasets/reference when the store went on after an earlier chunk")
        add_quiet_option(exp, "no summary line")
        bs = sub.add_parser("bases", help="signature bases of the store's hosts from its patches (for unmixing)",
                            description="write OUT/<host>.npz, the signature basis of each host's dopant pool, from the "
                                        "force-constant patches the store holds (no MLIP call; resumable); given "
                                        "training files (.h5, a directory, or several joined by commas) instead of a "
                                        "store, each host's basis is simulated with the settings they record "
                                        "(5-25 min a host; resumable)")
        bs.add_argument("store", help="a generation store (.sqlite), or training files")
        bs.add_argument("--out", required=True, help="output directory")
        bs.add_argument("--hosts", default=None, help="comma-separated host names (default: all with samples)")
        bs.add_argument("--concentrations", default="0.01,0.05,0.15", help="atomic fractions of the basis cells")
        bs.add_argument("--potential", default=None,
                        help="with training files: simulate with this MLIP instead of the one they record "
                             "(a second potential's bases, to train the conditioned model against)")
        bs.add_argument("--quiet", action="store_true", help="no progress bar")
        um = sub.add_parser("umap", help="2-D UMAP of doped−pristine spectra (paper Fig. 2d)",
                            description="2-D UMAP embedding of the defect signatures (doped − pristine), coloured per sample")
        um.add_argument("store")
        um.add_argument("--out", required=True, help="output PNG")
        um.add_argument("--color", default="dopant-mass",
                        help="dopant-mass (default) | total-concentration | n-dopants | host")
        um.add_argument("--spectrum", choices=("pdos", "gpdos"), default="pdos")
        um.add_argument("--n-neighbors", type=positive_int, default=15)
        um.add_argument("--min-dist", type=float, default=0.1)
        um.add_argument("--max-samples", type=positive_int, default=None)
        um.add_argument("--seed", type=int, default=0)
        um.add_argument("--csv", default=None, help="also write the embedding as CSV")

    def run(self, args):
        return _ACTIONS[args.dataset_command](args)


def _info(args) -> int:
    from defectnet.data.store import Store
    from defectnet.data.summary import summarize

    with Store(args.store, "r") as store:
        s = summarize(store)
        report = store.check() if args.check else None
    if args.json:
        if report is not None:
            s["integrity"] = {"ok": report.ok, "problems": report.problems}
        emit_json(s, args.json)
        if args.json == STDOUT:
            return 0 if report is None or report.ok else 1
    print(format_info(s))
    if report is not None:
        print(report)
    return 0 if report is None or report.ok else 1


def format_info(s: dict) -> str:
    """Human-readable text of :func:`defectnet.data.summary.summarize`."""
    lines = []
    pot = s.get("potential") or {}
    cfg = s.get("config") or {}
    lines.append(f"store      {s['path']} ({s['bytes'] / 1e6:.1f} MB, schema {s['schema_version']}, "
                 f"defectnet {s.get('defectnet_version')})")
    if cfg:
        lines.append(f"config     potential {pot.get('name')} ({pot.get('package')} {pot.get('version')}, "
                     f"{pot.get('model')}), tier {s.get('tier')}, grid {s.get('grid_id')}, "
                     f"broadening {json.dumps(s.get('broadening'))}, seed {cfg.get('seed')}, "
                     f"{cfg.get('samples_per_host')} samples/host")
    c = s["counts"]
    for table in ("hosts", "patches", "samples"):
        by = c.get(table, {})
        lines.append(f"{table:<10} {by.get('ok', 0)} ok, {by.get('failed', 0)} failed")
    if s["failures"]:
        lines.append("failures by reason")
        w = max(len(f["reason"]) for f in s["failures"])
        for f in s["failures"]:
            lines.append(f"  {f['stage']:<7} {f['reason']:<{w}}  {f['count']}")
    else:
        lines.append("failures   none")
    if s["hosts"]:
        lines.append("hosts")
        rows = [("name", "formula", "prototype", "status", "atoms", "ok", "failed", "dopant pool")]
        for h in s["hosts"]:
            status = h["status"] if h["status"] == "ok" else f"failed: {h['reason']}"
            rows.append((h["name"], h["formula"] or "", h["prototype"] or "", status, str(h["supercell_atoms"] or "-"),
                         str(h["ok"]), str(h["failed"]), " ".join(h["pool"] or [])))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines += ["  " + "  ".join(x.ljust(wd) for x, wd in zip(r, widths)).rstrip() for r in rows]
    t = s["timings_mean_s"]
    lines.append("mean timings per ok row (s)")
    for table, vals in t.items():
        if vals.get("rows"):
            parts = ", ".join(f"{k.removesuffix('_s')} {v:.2f}" for k, v in vals.items() if k != "rows")
            lines.append(f"  {table:<8} ({vals['rows']}): {parts}")
    runs = s["runs"]
    if runs:
        last = runs[-1]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(last["started"]))
        wall = f", {last['wall_s']:.0f} s" if last.get("wall_s") else ""
        lines.append(f"runs       {len(runs)} (last: {when}, {last['status']}, {last['workers']}{wall}); "
                     f"wall time {s['wall_s_total'] / 3600:.2f} h in all")
    return "\n".join(lines)


TRAINING_SUFFIXES = (".h5", ".hdf5", ".npz")


def _check(args) -> int:
    from defectnet.data.store import IntegrityReport, Store

    if Path(args.store).suffix.lower() in TRAINING_SUFFIXES:  # a training file: its labels against its supercells
        from defectnet.data.training_file import read_training_file, training_label_problems

        d = read_training_file(args.store)
        problems = training_label_problems(d)
        report = IntegrityReport(problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else []),
                                 {"samples": len(d["targets"]), "hosts": len(d["host_names"])})
    else:
        with Store(args.store, "r") as store:
            report = store.check(deep=not args.quick)
    print(report)
    return 0 if report.ok else 1


def _export(args) -> int:
    from defectnet.data.export import export

    res = export(args.store, args.out, fmt=args.format, compact=args.compact, skip_in=args.skip_in)
    skipped = f"; {res['n_skipped']} already in {args.skip_in} left out" if args.skip_in else ""
    if not args.quiet:
        print(f"wrote {res['path']}: {res['n_samples']} samples of {res['n_hosts']} hosts ({res['format']}, "
              f"{res['bytes'] / 1e6:.2f} MB{skipped})")
    return 0


def _bases(args) -> int:
    from defectnet.data.bases import store_bases, training_file_bases

    try:
        conc = tuple(float(x) for x in args.concentrations.split(","))
    except ValueError:
        raise DefectnetError(f"--concentrations: expected comma-separated fractions, got {args.concentrations!r}") from None
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()] if args.hosts else None
    from_store = Path(args.store).suffix.lower() in (".sqlite", ".db")
    if from_store and args.potential:
        raise DefectnetError(f"--potential: a store's bases are made from the patches it holds, with its own potential; "
                             f"expected training files (.h5) instead of {args.store}")
    extra = {} if from_store else {"potential": args.potential}
    build = store_bases if from_store else training_file_bases
    res = build(args.store, args.out, concentrations=conc, hosts=hosts, progress=not args.quiet, **extra)
    print(f"{args.out}: {len(res.written)} bases written, {len(res.existing)} already there, {len(res.skipped)} skipped")
    for name, why in res.skipped.items():
        print(f"  skipped {name}: {why}")
    for note in res.notes:
        print(f"  note: {note}")
    return 0


def _umap(args) -> int:
    from defectnet.data.projection import umap_plot

    res = umap_plot(args.store, args.out, color=args.color, spectrum=args.spectrum, n_neighbors=args.n_neighbors,
                    min_dist=args.min_dist, seed=args.seed, max_samples=args.max_samples, csv=args.csv)
    print(f"wrote {res['path']} ({res['n_samples']} samples, coloured by {res['color']})", file=sys.stdout)
    return 0


#: ``dataset`` action -> handler(args) -> exit status.
_ACTIONS = {"info": _info, "check": _check, "export": _export, "bases": _bases, "umap": _umap}
