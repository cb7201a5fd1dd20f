"""The answer of :func:`defectnet.predict.predict_defects` for one doped spectrum: a table, JSON and a plot."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.spectrum import Spectrum, area_quantile_mev

#: A candidate is reported as detected at or above this concentration (at.%) with presence > ½.
DETECTION_THRESHOLD_AT_PCT = 0.1


@dataclass
class Prediction:
    """The answer for one doped spectrum.

    Attributes
    ----------
    host : str
    composition : dict
        Host atomic fractions.
    kind : str
        ``"total"`` or ``"gpdos"``: what the model read.
    rows : list of dict
        One per candidate, largest concentration first: ``element``, ``source`` (user /
        recommender / both), ``concentration`` (atomic fraction), ``uncertainty`` (1σ,
        atomic fraction), ``presence`` (probability), ``detected`` (bool).
    pristine, doped : Spectrum
        The spectra the model saw, on its grid (unit area).
    notes : list of str
        Every correction made to the input.
    model : dict
        Which model answered (path, code version, training data, test metrics).
    truth : dict or None
        Known concentrations (atomic fractions), when given, shown beside the prediction.
    warnings : list of str
        Doubts about the answer (:mod:`defectnet.checks`: no signature above noise, an
        implausible total ...), with their numbers; the answer is trusted only without any.
    checks : dict
        The numbers behind the checks (``signal``: :func:`~defectnet.checks.signal_against_noise`).
    """

    host: str
    composition: dict
    kind: str
    rows: list
    pristine: Spectrum
    doped: Spectrum
    notes: list = field(default_factory=list)
    model: dict = field(default_factory=dict)
    truth: dict | None = None
    config: object = None  # the PredictConfig it was made with
    warnings: list = field(default_factory=list)
    checks: dict = field(default_factory=dict)

    @property
    def trusted(self) -> bool:
        """True when no check raised a doubt (:attr:`warnings` is empty)."""
        return not self.warnings

    @property
    def detected(self) -> dict[str, float]:
        """{element: concentration (atomic fraction)} of the candidates detected."""
        return {r["element"]: r["concentration"] for r in self.rows if r["detected"]}

    def to_dict(self) -> dict:
        return {"host": self.host, "composition": self.composition, "kind": self.kind,
                "candidates": self.rows, "detected": self.detected, "truth": self.truth,
                "trusted": self.trusted, "warnings": self.warnings, "checks": self.checks, "notes": self.notes, "model": self.model, "config": asdict(self.config) if self.config else None,
                "units": {"concentration": "atomic fraction of the crystal", "uncertainty": "1 sigma, atomic fraction"}}

    def write_json(self, path) -> Path:
        p = Path(path)
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        with writing_file(p, "the prediction as JSON"):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        return p

    def table(self) -> str:
        """A plain-text table: element, at.% ± 1σ, presence probability, detected (and the truth if known)."""
        truth = self.truth or {}
        head = f"{'element':<8} {'at.%':>8} {'± 1σ':>7} {'presence':>9}  {'detected':<8}"
        head += f" {'true at.%':>9}" if self.truth is not None else ""
        head += "  source"
        lines = [f"{self.host} ({self.kind}): {len(self.rows)} candidates", head]
        for r in self.rows:
            line = (f"{r['element']:<8} {100 * r['concentration']:8.3f} {100 * r['uncertainty']:7.3f} "
                    f"{r['presence']:9.2f}  {'yes' if r['detected'] else 'no':<8}")
            if self.truth is not None:
                line += f" {100 * truth.get(r['element'], 0.0):9.3f}"
            lines.append(line + f"  {r['source']}")
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def plot(self, path) -> Path:
        """Spectra (pristine, doped, difference) and concentration bars with 1σ error bars."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1.6, 1]})
        e = self.pristine.centers_mev
        top = max(extent_mev(self.pristine, 0.999), extent_mev(self.doped, 0.999)) * 1.1  # local modes too
        a1.plot(e, self.pristine.values, lw=1, label="pristine")
        a1.plot(e, self.doped.values, lw=1, label="doped")
        a1.plot(e, self.doped.values - self.pristine.values, lw=0.8, color="0.4", label="doped − pristine")
        a1.axhline(0, color="0.8", lw=0.5)
        a1.set(xlim=(0, top), xlabel="energy (meV)", ylabel=f"{self.kind.upper() if self.kind == 'gpdos' else 'PDoS'} (1/meV)",
               title=self.host)
        a1.legend(fontsize=8)
        els = [r["element"] for r in self.rows]
        x = np.arange(len(els))
        c = np.array([100 * r["concentration"] for r in self.rows])
        s = np.array([100 * r["uncertainty"] for r in self.rows])
        w = 0.4 if self.truth is not None else 0.7
        a2.bar(x - (w / 2 if self.truth is not None else 0), c, w, yerr=np.stack([np.minimum(s, c), s]), capsize=3,
               color=["C2" if r["detected"] else "0.7" for r in self.rows], label="predicted ± 1σ")
        if self.truth is not None:
            a2.bar(x + w / 2, [100 * self.truth.get(el, 0.0) for el in els], w, color="k", alpha=0.6, label="true")
            a2.legend(fontsize=8)
        a2.set_xticks(x, els)
        a2.set_ylabel("concentration (at.%)")
        a2.set_title("green: detected", fontsize=9)
        fig.tight_layout()
        p = Path(path)
        try:
            with writing_file(p, "the plot"):
                p.parent.mkdir(parents=True, exist_ok=True)
                fig.savefig(p, dpi=120, format=None if p.suffix else "png")  # a bare name: PNG, not <name>.png
        finally:
            plt.close(fig)
        return p


@contextmanager
def writing_file(path: Path, what: str):
    """Turn an OS or format error while writing ``path`` into a one-line :class:`DefectnetError` naming it."""
    if path.is_dir():  # matplotlib would write <path>.png beside it instead
        raise DefectnetError(f"cannot write {what} (it is a directory); expected a file path", source=str(path))
    try:
        yield
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise DefectnetError(f"cannot write {what} ({why}); expected a writable file path", source=str(path)) from None
    except ValueError as exc:  # matplotlib: an unknown image format
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DefectnetError(f"cannot write {what} ({first})", source=str(path)) from None


def extent_mev(s: Spectrum, share: float) -> float:
    """Energy below which ``share`` of the spectrum's area lies, meV."""
    return area_quantile_mev(s.values, s.edges_mev, share)
