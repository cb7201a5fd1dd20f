"""The example spectra, and the hosts' simulated pristine spectra computed before the cases run."""

import warnings

import pytest

from defectnet.io import read_spectrum

from .common import EX, Spectra


@pytest.fixture(scope="module", autouse=True)
def host_spectra():
    """The simulated pristine spectra of the hosts used here, computed once for the module (the CLI would
    show the MLIP's progress bars on stderr the first time)."""
    from defectnet.predict import host_reference

    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
        warnings.simplefilter("ignore")
        mp.setenv("DEFECTNET_CACHE", "off")  # as in every test (conftest): kept for this process only
        return {h: host_reference(h) for h in ("GaAs", "Si", "CdTe")}


@pytest.fixture(scope="module")
def gaas():
    p = read_spectrum(EX / "pristine.csv", column="gpdos")
    d = read_spectrum(EX / "doped.csv", column="gpdos")
    return Spectra(p.centers_mev, p.values, d.values)
