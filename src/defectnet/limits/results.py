"""The results of a run: one candidate's limit (:class:`CandidateLimit`) and a host's (:class:`DetectionLimits`)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from defectnet.limits.config import LimitsConfig


@dataclass(frozen=True)
class CandidateLimit:
    """One candidate's detection limit and the rates it rests on.

    Attributes
    ----------
    element : str
    limit : float or None
        Atomic fraction: the least tested concentration detected in ≥ ``min_rate`` of the
        measurements (and every tested one above it); None when even ``c_max`` is not.
    concentrations : tuple of float, length T
        The tested grid concentrations, increasing (atomic fractions).
    rates : tuple of float, length T
        Share of the measurements with presence ≥ ``min_presence`` at each.
    read : tuple of float, length T
        Median concentration the predictor read at each (atomic fractions).
    realised : tuple of float, length T
        The concentration simulated at each (the synthesis engine's whole atoms; else the grid's).
    false_alarm : float
        Share of blank measurements (no candidate) with presence ≥ ``min_presence``.
    measurements : int
        Measurements per tested concentration asked for.
    measured : tuple of int, length T
        Measurements made at each: all of them in a scan; in a bisection, chunk by chunk until
        the verdict was certain (a pass needs ⌈min_rate · measurements⌉ detections, so the
        verdict, and the limit, are those of all the measurements; ``rates`` are over these).
    """

    element: str
    limit: float | None
    concentrations: tuple
    rates: tuple
    read: tuple
    realised: tuple
    false_alarm: float
    measurements: int
    measured: tuple = ()

    @property
    def below_range(self) -> bool:
        """True when the lowest grid concentration is already detected: the limit is at or below it."""
        return self.limit is not None and self.limit <= self.concentrations[0] * (1 + 1e-9)

    def rate_at(self, c: float | None) -> float | None:
        """The detection rate at tested concentration ``c`` (None if not tested)."""
        for x, r in zip(self.concentrations, self.rates):
            if c is not None and math.isclose(x, c, rel_tol=1e-9):
                return r
        return None

    def rate_below(self) -> float | None:
        """The rate at the tested concentration just below the limit (None if none was)."""
        below = [r for x, r in zip(self.concentrations, self.rates) if self.limit is None or x < self.limit * (1 - 1e-9)]
        return below[-1] if below else None


@dataclass
class DetectionLimits:
    """Detection limits of a host's candidates, with how they were computed.

    Attributes
    ----------
    host : str
    config : LimitsConfig
    limits : tuple of CandidateLimit
    method : dict
        How it was computed, in words and numbers: ``engine``, ``predictor``, ``resolution``
        (the model's ``to_dict``), ``noise`` (its equivalents: ``counts`` over the grid and the
        relative error at the pristine's peak bin), ``grid`` (step factor), ``basis``.
    provenance : dict
        :func:`defectnet.provenance.provenance` of the run.
    notes : list of str
        What to know beside the numbers (candidates too alike to tell apart).
    """

    host: str
    config: LimitsConfig
    limits: tuple
    method: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def __getitem__(self, element: str) -> CandidateLimit:
        for lim in self.limits:
            if lim.element == element:
                return lim
        raise KeyError(element)

    def summary(self) -> str:
        """The settings in one line."""
        c, n = self.config, self.method.get("noise", {})
        return (f"{self.host}: presence ≥ {c.min_presence:g} in ≥ {100 * c.min_rate:g} % of {c.measurements} simulated "
                f"measurements; resolution {c.resolution}, noise {c.noise:g} (≈ {n.get('counts', float('nan')):.2g} "
                f"counts over the grid, {100 * n.get('peak_relative', float('nan')):.2g} % at the pristine's peak bin), "
                f"{c.kind}")

    def table(self) -> str:
        """Plain text: per candidate the limit (at.%), the rate there and just below, false alarms, how."""
        head = f"{'candidate':<10} {'limit at.%':>10} {'rate there':>10} {'rate below':>10} {'false alarms':>12}  tested"
        lines = [self.summary(), head]
        for lim in self.limits:
            below = lim.rate_below()
            text = ("> " + pct(self.config.c_max) if lim.limit is None else
                    ("≤ " if lim.below_range else "") + pct(lim.limit))
            there = lim.rate_at(lim.limit)
            placed = dict(zip(lim.concentrations, lim.realised)).get(lim.limit)
            if placed is not None and not math.isclose(placed, lim.limit, rel_tol=1e-6):
                text += f" ({pct(placed)} placed)"  # the synthesis engine: whole dopant atoms
            lines.append(f"{lim.element:<10} {text:>10} {_rate(there):>10} {_rate(below):>10} "
                         f"{lim.false_alarm:12.2f}  {len(lim.concentrations)}")
        lines += [f"{HOW[k]}: {self.method[k]['text']}" for k in HOW
                  if isinstance(self.method.get(k), dict) and "text" in self.method[k]]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def to_dict(self) -> dict:
        return {"host": self.host, "config": self.config.to_dict(), "method": self.method,
                "units": {"limit": "atomic fraction", "concentrations": "atomic fraction", "read": "atomic fraction"},
                "limits": [asdict(lim) | {"below_range": lim.below_range} for lim in self.limits],
                "notes": self.notes, "provenance": self.provenance}

    @classmethod
    def from_dict(cls, d: dict) -> DetectionLimits:
        names = {f.name for f in fields(CandidateLimit)}
        lims = tuple(CandidateLimit(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in row.items() if k in names})
                     for row in d["limits"])
        return cls(d["host"], LimitsConfig.from_dict(d["config"]), lims, d.get("method", {}), d.get("provenance", {}),
                   list(d.get("notes", [])))

    def write_json(self, path) -> Path:
        """Write :meth:`to_dict` (settings, how, numbers, provenance) as JSON; returns the path."""
        from defectnet.prediction import writing

        p = Path(path)
        with writing(p, "the detection limits as JSON"):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return p

    def plot(self, path) -> Path:
        """Detection rate against concentration (log axis) per candidate, limits marked; a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from defectnet.prediction import writing

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for i, lim in enumerate(self.limits):
            order = np.argsort(lim.concentrations)
            x = 100 * np.asarray(lim.concentrations)[order]
            ax.plot(x, np.asarray(lim.rates)[order], "o-", color=f"C{i % 10}", ms=4, lw=1,
                    label=f"{lim.element}: " + ("not reached" if lim.limit is None else f"{100 * lim.limit:.3g} at.%"))
            if lim.limit is not None:
                ax.axvline(100 * lim.limit, color=f"C{i % 10}", lw=0.6, ls=":")
        ax.axhline(self.config.min_rate, color="0.5", lw=0.8, ls="--")
        ax.set(xscale="log", ylim=(-0.03, 1.03), xlim=(100 * self.config.c_min / 1.2, 100 * self.config.c_max * 1.2),
               xlabel="concentration (at.%)", ylabel=f"share with presence ≥ {self.config.min_presence:g}")
        ax.set_title(f"{self.host}: {self.config.resolution}, noise {self.config.noise:g}, "
                     f"{self.config.measurements} measurements each", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        fig.text(0.01, 0.01, f"forward model: {self.config.engine}; predictor: {self.config.predictor}", fontsize=7,
                 color="0.4")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        p = Path(path)
        try:
            with writing(p, "the plot"):
                p.parent.mkdir(parents=True, exist_ok=True)
                fig.savefig(p, dpi=120, format=None if p.suffix else "png")
        finally:
            plt.close(fig)
        return p


#: The parts of :attr:`DetectionLimits.method` the table states, with their labels.
HOW = {"engine": "forward model", "predictor": "predictor", "resolution": "resolution", "noise": "noise",
       "grid": "concentrations"}


def pct(fraction: float) -> str:
    """An atomic ``fraction`` as at.% text, 3 significant figures (0.0125 -> ``"1.25"``)."""
    return f"{100 * fraction:.3g}"


def _rate(r: float | None) -> str:
    return "–" if r is None else f"{r:.2f}"
