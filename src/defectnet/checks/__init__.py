"""What :func:`defectnet.predict.predict_defects` checks in its input and its answer.

* **Candidates** (:func:`split_candidate`, :func:`model_candidates`, :func:`basis_candidates`):
  real elements of the dopant vocabulary; not an element of the host, unless it is an
  antisite named with its site (``Ga@As``) and simulated so in the signature basis.
* **Signal against noise** (:func:`signal_against_noise`): is the defect signature
  Δ = doped − pristine larger than the noise of the two spectra? If not, no dopant is
  reported, whatever the network or the unmixing says (:func:`no_signature_warning`).
* **Plausibility** (:func:`plausibility_warnings`): a total concentration or a number of
  detected dopants beyond what the model was trained on; (:func:`change_unexplained_warning`)
  a doped spectrum that differs from its pristine below the band edge more, with sharper bands
  or with more weight at its lowest energies than a doping of the answer's total can make it.
* **Consistency with the host** (:func:`host_consistency`, :func:`doped_consistency`,
  :func:`swap_consistency`, :func:`scale_warning`): a measured pristine unlike the host's
  simulated one; a doped spectrum unlike its pristine, on a stretched or shifted energy axis,
  or not a phonon spectrum; the two files swapped; spectra read at another energy scale.

User errors raise :class:`~defectnet.errors.DefectnetError` (one line); doubts about an
answer are returned as warning texts, which the prediction lists and which make it
untrusted (``trusted: false`` in its JSON). ``docs/predict-checks.md`` describes them for users.

The package, by responsibility: ``candidates``, ``signal`` (signal against noise),
``plausibility`` (of the answer), ``shape`` (measures of a spectrum's shape: band edge,
background, W1 distances, noise), ``consistency`` (with the host, between the two files) and
``units`` (energy unit and coverage).
"""

from defectnet.checks.candidates import basis_candidates, check_in_basis, model_candidates, split_candidate
from defectnet.checks.consistency import (CLOSER_NOISE_SIGMAS, MAX_CLOSER, MAX_HOST_DISTANCE, MAX_IN_BAND_DISTANCE,
                                          MAX_ROUGHNESS, MAX_SHIFT_RESIDUAL, MAX_STRETCH_RESIDUAL, MAX_TAIL_EXCESS,
                                          MIN_SHIFT, MIN_STRETCH, SCALE_TOLERANCE, SHIFT_SEARCH, STRETCH_SEARCH,
                                          doped_consistency, doped_problem, host_consistency, host_problem,
                                          scale_warning, swap_consistency, swap_problem)
from defectnet.checks.plausibility import (LOW_QUANTILE, LOW_SHIFT, LOW_SHIFT_PER_FRACTION, MAX_DOPANTS,
                                           MAX_IN_BAND_PER_FRACTION, MAX_SHARPENING_PER_FRACTION, MAX_TOTAL_FRACTION,
                                           MAX_UNEXPLAINED, SHARPENING_SLACK, change_unexplained_warning,
                                           low_energy_text, plausibility_warnings, sharpening_text, unexplained_warning)
from defectnet.checks.shape import (CUT_SHARE, SCALE_BOUNDS, above_background, band_edge, cumulative, in_band_curve,
                                    in_band_shape, is_cut, roughness, scaled_distance, scaled_w1, tail_share, w1_noise,
                                    w1_of_cdfs)
from defectnet.checks.signal import (MIN_NOISE_BINS, NOISE_SIGMAS, NOISE_WINDOW, ROUND_OFF, no_signature_warning,
                                     signal_against_noise)
from defectnet.checks.units import (DOPED_EDGE_WINDOW, GUESSED_UNITS, PRISTINE_EDGE_WINDOW, choose_unit,
                                    coverage_warnings)

__all__ = ["CLOSER_NOISE_SIGMAS", "CUT_SHARE", "DOPED_EDGE_WINDOW", "GUESSED_UNITS", "LOW_QUANTILE", "LOW_SHIFT",
           "LOW_SHIFT_PER_FRACTION", "MAX_CLOSER", "MAX_DOPANTS", "MAX_HOST_DISTANCE", "MAX_IN_BAND_DISTANCE",
           "MAX_IN_BAND_PER_FRACTION", "MAX_ROUGHNESS", "MAX_SHARPENING_PER_FRACTION", "MAX_SHIFT_RESIDUAL",
           "MAX_STRETCH_RESIDUAL", "MAX_TAIL_EXCESS", "MAX_TOTAL_FRACTION", "MAX_UNEXPLAINED", "MIN_NOISE_BINS",
           "MIN_SHIFT", "MIN_STRETCH", "NOISE_SIGMAS", "NOISE_WINDOW", "PRISTINE_EDGE_WINDOW", "ROUND_OFF",
           "SCALE_BOUNDS", "SCALE_TOLERANCE", "SHARPENING_SLACK", "SHIFT_SEARCH", "STRETCH_SEARCH", "above_background",
           "band_edge", "basis_candidates", "change_unexplained_warning", "check_in_basis", "choose_unit",
           "coverage_warnings", "cumulative", "doped_consistency", "doped_problem", "host_consistency", "host_problem",
           "in_band_curve", "in_band_shape", "is_cut", "low_energy_text", "model_candidates", "no_signature_warning",
           "plausibility_warnings", "roughness", "scale_warning", "scaled_distance", "scaled_w1", "sharpening_text",
           "signal_against_noise", "split_candidate", "swap_consistency", "swap_problem", "tail_share",
           "unexplained_warning", "w1_noise", "w1_of_cdfs"]
