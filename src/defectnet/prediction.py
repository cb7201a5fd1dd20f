"""What every answer shares: the detection threshold, the extent of a spectrum and a guarded file writer.

The answer itself, :class:`defectnet.analysis.result.Prediction`, lives in :mod:`defectnet.analysis`;
this module stays below :mod:`defectnet.checks` and :mod:`defectnet.unmix`, which import it.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from defectnet.errors import DefectnetError
from defectnet.spectrum import Spectrum, area_quantile_mev

#: A candidate is reported as detected at or above this concentration (at.%) with presence > ½.
DETECTION_THRESHOLD_AT_PCT = 0.1


@contextmanager
def writing(path: Path, what: str):
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
