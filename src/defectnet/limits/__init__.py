"""Detection limits: the least concentration of each candidate dopant a measurement would find.

Before beam time the question is whether, say, 0.5 at.% of B in Si is visible on TOSCA with
the counting statistics a given count time buys. :func:`detection_limits` answers it per
candidate of a host's signature basis by simulated measurements:

1. **Forward model** (:data:`ENGINES`): the defect signature Δ_k(c) of candidate k alone at
   concentration c (other candidates absent; optionally a stated background mix in every
   sample). ``curves``: the basis' own simulated curves, piecewise linear in c through the
   origin (what :func:`defectnet.unmix.unmix` reads them as; milliseconds). ``synthesis``:
   the host's patches placed afresh in its supercell by :class:`~defectnet.synthesis.Synthesizer`
   with other seeds than the basis' (~1–4 s per placement; a concentration is then a whole
   number of dopant atoms in the cell, and below half an atom the cell is pristine).
2. **Instrument**: pristine and doped spectra broadened to the instrument's resolution
   (:func:`defectnet.resolution.get_resolution`): a Gaussian of FWHM
   √(R(E)² − b(E)²) on top of the basis' own broadening b(E), so that the total is R(E);
   where R is finer than b, the basis' broadening is kept.
3. **Counting noise**, independently on pristine and doped, in the convention of the
   training augmentation (:class:`~defectnet.model.augment.Augment`): with q_i the share of
   the spectrum's area in bin i of the basis grid (B bins), q_i += noise · √(q_i / B) · z_i,
   z_i ~ N(0, 1), clipped at 0 and renormalised. ``noise`` is the relative error of a bin
   holding the mean share 1/B, and equals Poisson statistics of N = B / noise² counts over
   the grid (0.02 on the 640-bin grid: 1.6 × 10⁶ counts).
4. **Predictor** (:data:`PREDICTORS`), given the pristine and doped measurement and every
   candidate: ``unmix`` (``predict --basis --method unmix``), ``conditioned`` (the shipped
   conditioned network, ``predict --basis``'s default answer, in one batch), both with
   predict's signal-against-noise check, or ``predict``
   (:func:`~defectnet.predict.predict_defects` itself, with all its checks; ~5× slower). A measurement *detects* the candidate when the predictor's
   presence for it is ≥ ``min_presence`` (0.95).

The limit of a candidate is the least concentration of a log grid (0.1–25 at.% by default)
at which at least ``min_rate`` (90 %) of ``measurements`` simulated measurements detect it,
and every grid concentration above it too (``scan``), or the same found by bisection over
the grid, assuming the detection rate grows with c (``bisect``; a concentration is then measured
a few measurements at a time until its verdict is certain, which gives the verdict of all of them). Each candidate's
measurements use the same noise draws at every concentration (common random numbers), so
its rate is a smooth function of c and two noise levels are compared on the same draws.
A blank measurement (no candidate) gives each candidate's false-alarm rate.

With the ``curves`` engine the simulated measurements come from the very curves the
unmixing fits, so the planner has no model error: it is the limit set by resolution and
counting noise. How far that is from the limit observed on fresh placements is measured in
``benchmarks/limits.py`` (``docs/limits.md``).

The package, by responsibility: ``config`` (:class:`LimitsConfig`), ``engines`` (forward
models), ``instrument`` (resolution and counting noise), ``predictors``, ``search`` (the
planner, :func:`detection_limits`) and ``results`` (:class:`DetectionLimits`).
"""

from defectnet.limits.config import SEARCHES, LimitsConfig
from defectnet.limits.engines import ENGINES, PLACEMENT_SEED, CurvesEngine, SynthesisEngine
from defectnet.limits.instrument import broadened_basis, broadening_kernel, counting_noise
from defectnet.limits.predictors import (PREDICT_KINDS, PREDICTOR_TEXT, PREDICTORS, conditioned_predictor,
                                         predict_predictor, unmix_predictor)
from defectnet.limits.results import HOW, CandidateLimit, DetectionLimits
from defectnet.limits.search import SEQUENTIAL_CHUNK, TWIN_COSINE, detection_limits

__all__ = ["ENGINES", "HOW", "PLACEMENT_SEED", "PREDICTORS", "PREDICTOR_TEXT", "PREDICT_KINDS", "SEARCHES",
           "SEQUENTIAL_CHUNK", "TWIN_COSINE", "CandidateLimit", "CurvesEngine", "DetectionLimits", "LimitsConfig",
           "SynthesisEngine", "broadened_basis", "broadening_kernel", "conditioned_predictor", "counting_noise",
           "detection_limits", "predict_predictor", "unmix_predictor"]
