"""Physical constants and unit conversions, in one place.

Internally defectnet uses meV for energies, Å for lengths, amu for masses and eV/Å for
forces. Conversions happen once, at the boundary (file readers, plotting, the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import constants as _c


@dataclass(frozen=True)
class Units:
    mev_per_thz: float = 4.135667696  # meV per THz (h × 1 THz)
    cm1_per_mev: float = 8.065543937  # cm⁻¹ per meV
    # ω = sqrt(λ) for λ in eV/Å²/amu, in THz (ν = ω/2π); CODATA via scipy, agrees with phonopy's.
    thz_per_sqrt_ev_a2_amu: float = float(
        np.sqrt(_c.electron_volt / (_c.angstrom**2 * _c.atomic_mass)) / (2 * np.pi) / 1e12
    )

    @property
    def mev_per_sqrt_ev_a2_amu(self) -> float:
        """meV per sqrt(eV/Å²/amu): an eigenvalue λ of D = M^-½ Φ M^-½ gives ħω = this × √λ."""
        return self.thz_per_sqrt_ev_a2_amu * self.mev_per_thz


UNITS = Units()

# Energy units a spectrum may arrive in, as the factor that turns one unit into meV.
ENERGY_UNIT_TO_MEV: dict[str, float] = {
    "meV": 1.0,
    "THz": UNITS.mev_per_thz,
    "cm-1": 1.0 / UNITS.cm1_per_mev,
    "eV": 1000.0,
}


def to_mev(values, unit: str) -> np.ndarray:
    """Convert energies from ``unit`` ('meV', 'THz', 'cm-1' or 'eV') to meV."""
    try:
        factor = ENERGY_UNIT_TO_MEV[canonical_unit(unit)]
    except KeyError:
        from defectnet.errors import DefectnetError

        raise DefectnetError(
            f"unknown energy unit {unit!r}; expected one of {', '.join(ENERGY_UNIT_TO_MEV)}"
        ) from None
    return np.asarray(values, dtype=float) * factor


def from_mev(values, unit: str) -> np.ndarray:
    """Convert energies in meV to ``unit`` ('meV', 'THz', 'cm-1' or 'eV')."""
    return np.asarray(values, dtype=float) / to_mev(1.0, unit)


def canonical_unit(unit: str) -> str:
    u = unit.strip().lower().replace("^", "").replace("⁻¹", "-1").replace(" ", "")
    aliases = {"mev": "meV", "thz": "THz", "cm-1": "cm-1", "1/cm": "cm-1", "cm**-1": "cm-1", "invcm": "cm-1", "ev": "eV"}
    return aliases.get(u, unit)
