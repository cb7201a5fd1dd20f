"""The answer of :func:`defectnet.predict.predict_defects` for one doped spectrum: a table, JSON and a plot.

:class:`Prediction` is frozen: it is assembled once, from the aligned spectra, the estimate and
the :class:`Message` records of every step, and then only read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from defectnet.analysis.config import PredictConfig
from defectnet.errors import DefectnetError
from defectnet.prediction import DETECTION_THRESHOLD_AT_PCT, extent_mev, writing
from defectnet.spectrum import Spectrum

#: The levels of a :class:`Message`: a note says what was done, a warning doubts the answer.
LEVELS = ("note", "warning")
UNITS = {"concentration": "atomic fraction of the crystal", "uncertainty": "1 sigma, atomic fraction"}


@dataclass(frozen=True)
class Message:
    """One statement about an answer: a note (a correction made to the input, how the answer was made)
    or a warning (a doubt: the answer is not trusted).

    Attributes
    ----------
    level : {'note', 'warning'}
    code : str
        A stable, kebab-case name of what is said (``energy-scale-fitted``, ``unexplained`` …),
        for programs; the text may be reworded, the code is not.
    text : str
        The sentence the table prints after ``note:`` or ``warning:``.
    """

    level: str
    code: str
    text: str

    def __post_init__(self):
        if self.level not in LEVELS:
            raise DefectnetError(f"unknown message level {self.level!r}; expected one of {', '.join(LEVELS)}")

    @classmethod
    def note(cls, code: str, text: str) -> "Message":
        return cls("note", code, text)

    @classmethod
    def warning(cls, code: str, text: str) -> "Message":
        return cls("warning", code, text)

    def to_dict(self) -> dict:
        return {"level": self.level, "code": self.code, "text": self.text}

    @classmethod
    def from_dict(cls, d: dict) -> "Message":
        return cls(str(d["level"]), str(d["code"]), str(d["text"]))


def answer_row(element: str, source: str, concentration: float, uncertainty: float, presence: float) -> dict:
    """One row of :attr:`Prediction.rows`: detected when presence > ½ and at or above the detection threshold."""
    return {"element": element, "source": source, "concentration": concentration, "uncertainty": uncertainty,
            "presence": presence,
            "detected": bool(presence > 0.5 and 100 * concentration >= DETECTION_THRESHOLD_AT_PCT)}


@dataclass(frozen=True)
class Prediction:
    """The answer for one doped spectrum.

    Attributes
    ----------
    host : str
    composition : dict
        Host atomic fractions {element: fraction}.
    kind : str
        ``"total"`` or ``"gpdos"``: what the estimator read.
    rows : tuple of dict
        One per candidate, largest concentration first: ``element``, ``source`` (user /
        recommender / both / basis), ``concentration`` (atomic fraction), ``uncertainty`` (1σ,
        atomic fraction), ``presence`` (probability), ``detected`` (bool).
    pristine, doped : Spectrum
        The spectra the estimator read, on its grid (per meV, unit area).
    messages : tuple of Message
        Every note and warning, in the order they were made (:attr:`notes`, :attr:`warnings`).
    model : dict
        Who answered (path, arch, method, code version, training data, test metrics, basis).
    truth : dict or None
        Known concentrations (atomic fractions), when given, shown beside the prediction.
    config : PredictConfig or None
        What it was made with (the energy scale as applied: fitted when asked).
    checks : dict
        The numbers behind the checks (``signal``: :func:`~defectnet.checks.signal_against_noise`,
        ``doped``, ``host``, ``swap``).
    """

    host: str
    composition: dict
    kind: str
    rows: tuple
    pristine: Spectrum
    doped: Spectrum
    messages: tuple = ()
    model: dict = field(default_factory=dict)
    truth: dict | None = None
    config: PredictConfig | None = None
    checks: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "rows", tuple(self.rows))
        object.__setattr__(self, "messages", tuple(self.messages))

    @property
    def notes(self) -> tuple[str, ...]:
        """The text of every note: each correction made to the input, and how the answer was made."""
        return tuple(m.text for m in self.messages if m.level == "note")

    @property
    def warnings(self) -> tuple[str, ...]:
        """The text of every warning: doubts about the answer (:mod:`defectnet.checks`), with their numbers."""
        return tuple(m.text for m in self.messages if m.level == "warning")

    @property
    def trusted(self) -> bool:
        """True when no check raised a doubt (no warning)."""
        return not self.warnings

    @property
    def detected(self) -> dict[str, float]:
        """{element: concentration (atomic fraction)} of the candidates detected."""
        return {r["element"]: r["concentration"] for r in self.rows if r["detected"]}

    def to_dict(self) -> dict:
        """JSON-safe dict: the keys ``defectnet predict --json`` writes (``candidates`` are :attr:`rows`);
        ``messages`` and ``spectra`` make it whole again with :meth:`from_dict`."""
        return {"host": self.host, "composition": self.composition, "kind": self.kind,
                "candidates": list(self.rows), "detected": self.detected, "truth": self.truth,
                "trusted": self.trusted, "warnings": list(self.warnings), "checks": self.checks,
                "notes": list(self.notes), "model": self.model,
                "config": self.config.to_dict() if self.config else None, "units": UNITS,
                "messages": [m.to_dict() for m in self.messages],
                "spectra": {"pristine": self.pristine.to_dict(), "doped": self.doped.to_dict()}}

    @classmethod
    def from_dict(cls, d: dict) -> "Prediction":
        """The prediction :meth:`to_dict` wrote."""
        try:
            return cls(d["host"], d["composition"], d["kind"], tuple(d["candidates"]),
                       Spectrum.from_dict(d["spectra"]["pristine"]), Spectrum.from_dict(d["spectra"]["doped"]),
                       tuple(Message.from_dict(m) for m in d["messages"]), d.get("model") or {}, d.get("truth"),
                       PredictConfig.from_dict(d["config"]) if d.get("config") else None, d.get("checks") or {})
        except (KeyError, TypeError) as exc:
            raise DefectnetError(f"not a prediction written by defectnet ({type(exc).__name__}: {exc}); expected "
                                 "the JSON of Prediction.to_json") from None

    def to_json(self, indent: int | None = 1) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "Prediction":
        """The prediction :meth:`to_json` (or ``defectnet predict --json``) wrote."""
        try:
            d = json.loads(text)
        except ValueError as exc:
            raise DefectnetError(f"not JSON ({exc}); expected the JSON of Prediction.to_json") from None
        return cls.from_dict(d)

    def write_json(self, path) -> Path:
        """Write :meth:`to_json` to ``path``; the path written."""
        p = Path(path)
        text = self.to_json() + "\n"
        with writing(p, "the prediction as JSON"):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        return p

    def table(self) -> str:
        """A plain-text table: element, at.% ± 1σ, presence probability, detected (and the truth if known),
        then the warnings and the notes: what ``defectnet predict`` prints."""
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
        """Spectra (pristine, doped, difference) and concentration bars with 1σ error bars, as an image
        (PNG unless ``path``'s suffix names another format); the path written."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1.6, 1]})
        self._plot_spectra(a1)
        self._plot_concentrations(a2)
        fig.tight_layout()
        p = Path(path)
        try:
            with writing(p, "the plot"):
                p.parent.mkdir(parents=True, exist_ok=True)
                fig.savefig(p, dpi=120, format=None if p.suffix else "png")  # a bare name: PNG, not <name>.png
        finally:
            plt.close(fig)
        return p

    def _plot_spectra(self, ax) -> None:
        e = self.pristine.centers_mev
        top = max(extent_mev(self.pristine, 0.999), extent_mev(self.doped, 0.999)) * 1.1  # local modes too
        ax.plot(e, self.pristine.values, lw=1, label="pristine")
        ax.plot(e, self.doped.values, lw=1, label="doped")
        ax.plot(e, self.doped.values - self.pristine.values, lw=0.8, color="0.4", label="doped − pristine")
        ax.axhline(0, color="0.8", lw=0.5)
        ax.set(xlim=(0, top), xlabel="energy (meV)",
               ylabel=f"{self.kind.upper() if self.kind == 'gpdos' else 'PDoS'} (1/meV)", title=self.host)
        ax.legend(fontsize=8)

    def _plot_concentrations(self, ax) -> None:
        els = [r["element"] for r in self.rows]
        x = np.arange(len(els))
        c = np.array([100 * r["concentration"] for r in self.rows])
        s = np.array([100 * r["uncertainty"] for r in self.rows])
        w = 0.4 if self.truth is not None else 0.7
        ax.bar(x - (w / 2 if self.truth is not None else 0), c, w, yerr=np.stack([np.minimum(s, c), s]), capsize=3,
               color=["C2" if r["detected"] else "0.7" for r in self.rows], label="predicted ± 1σ")
        if self.truth is not None:
            ax.bar(x + w / 2, [100 * self.truth.get(el, 0.0) for el in els], w, color="k", alpha=0.6, label="true")
            ax.legend(fontsize=8)
        ax.set_xticks(x, els)
        ax.set_ylabel("concentration (at.%)")
        ax.set_title("green: detected", fontsize=9)
