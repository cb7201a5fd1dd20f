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
    fit : dict or None
        With a basis, Δ as the basis reads the answer: ``reading`` (curve, total, linear) and
        ``contributions`` {element: list (B,) per meV on the spectra's grid}, each candidate's Δ_k at
        its concentration (:func:`~defectnet.unmix.contributions`); their sum is the fitted Δ
        (:meth:`fit_columns`). None without a basis.
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
    fit: dict | None = None

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
                "spectra": {"pristine": self.pristine.to_dict(), "doped": self.doped.to_dict()}} | \
            ({"fit": self.fit} if self.fit is not None else {})

    @classmethod
    def from_dict(cls, d: dict) -> "Prediction":
        """The prediction :meth:`to_dict` wrote."""
        try:
            return cls(d["host"], d["composition"], d["kind"], tuple(d["candidates"]),
                       Spectrum.from_dict(d["spectra"]["pristine"]), Spectrum.from_dict(d["spectra"]["doped"]),
                       tuple(Message.from_dict(m) for m in d["messages"]), d.get("model") or {}, d.get("truth"),
                       PredictConfig.from_dict(d["config"]) if d.get("config") else None, d.get("checks") or {},
                       d.get("fit"))
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

    def fit_columns(self) -> dict:
        """The fit against the measurement, as columns (B,) on the spectra's grid: ``energy_meV`` (bin
        centres), ``measured_delta`` (doped − pristine, per meV), ``fitted_delta`` (the sum of the
        contributions), ``residual`` (measured − fitted), one column per candidate (its contribution)
        and, when the files gave errors, ``measured_delta_error`` (1σ of Δ). Needs a basis."""
        if self.fit is None:
            raise DefectnetError("no fitted signature: the basis' Δ of each candidate is only known with a basis "
                                 "(--basis)")
        measured = self.doped.values - self.pristine.values
        parts = {el: np.asarray(v, float) for el, v in self.fit["contributions"].items()}
        fitted = np.sum(list(parts.values()), axis=0) if parts else np.zeros_like(measured)
        cols = {"energy_meV": self.pristine.centers_mev, "measured_delta": measured, "fitted_delta": fitted,
                "residual": measured - fitted, **parts}
        if self.doped.errors is not None and self.pristine.errors is not None:
            cols["measured_delta_error"] = np.sqrt(self.doped.errors ** 2 + self.pristine.errors ** 2)
        return cols

    def write_fit_csv(self, path) -> Path:
        """Write :meth:`fit_columns` as CSV (a header line of column names, one row per bin); the path written."""
        cols = self.fit_columns()
        p = Path(path)
        rows = np.column_stack(list(cols.values()))
        text = ",".join(cols) + "\n" + "\n".join(",".join(f"{v:.9g}" for v in row) for row in rows) + "\n"
        with writing(p, "the fit as CSV"):
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
        """Spectra (pristine, doped, difference) and concentration bars with 1σ error bars and, with a basis,
        the fitted Δ against the measured one with each candidate's contribution and the residual, as an
        image (PNG unless ``path``'s suffix names another format); the path written."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if self.fit is None:
            fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1.6, 1]})
        else:
            fig = plt.figure(figsize=(11, 8.5))
            grid = fig.add_gridspec(3, 2, width_ratios=[1.6, 1], height_ratios=[3, 3, 1.2])
            a1, a2 = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
            a3 = fig.add_subplot(grid[1, :])
            self._plot_fit(a3, fig.add_subplot(grid[2, :], sharex=a3))
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

    def _plot_fit(self, ax, below) -> None:
        """Measured Δ (±1σ band when known), the fitted Δ, each present candidate's contribution; the residual below."""
        cols = self.fit_columns()
        e = cols["energy_meV"]
        top = max(extent_mev(self.pristine, 0.999), extent_mev(self.doped, 0.999)) * 1.1
        ax.plot(e, cols["measured_delta"], lw=1, color="k", label="measured Δ")
        if "measured_delta_error" in cols:
            ax.fill_between(e, cols["measured_delta"] - cols["measured_delta_error"],
                            cols["measured_delta"] + cols["measured_delta_error"], color="0.8", lw=0, label="±1σ")
        ax.plot(e, cols["fitted_delta"], lw=1.2, color="C3", label=f"fitted Δ ({self.fit['reading']})")
        conc = {r["element"]: r["concentration"] for r in self.rows}
        for el, v in self.fit["contributions"].items():
            if np.any(v):
                ax.plot(e, v, lw=0.8, ls="--", label=f"{el} {100 * conc.get(el, 0.0):.2f} at.%")
        ax.axhline(0, color="0.8", lw=0.5)
        ax.set(xlim=(0, top), ylabel="Δ (1/meV)", title="doped − pristine: measured and as the basis reads the answer")
        ax.legend(fontsize=8, ncol=2)
        below.plot(e, cols["residual"], lw=0.8, color="0.3")
        below.axhline(0, color="0.8", lw=0.5)
        below.set(xlabel="energy (meV)", ylabel="residual")

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
