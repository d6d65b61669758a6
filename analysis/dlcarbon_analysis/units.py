"""Unit conversion for presenting dlcarbon's SI output (J, s, kgCO2e, ...) in friendly units.

    convert(4.6332e12, "J", "MWh")            # 1287.0
    convert(df["co2e_location"], "kgCO2e", "tCO2e")
    convert(1.0, "J", "kgCO2e")               # UnitError: energy vs CO2e mass

Each unit is a (dimension, factor to the SI unit the output files use) pair; conversion between
units of one dimension multiplies by the ratio of factors. Unknown units and units of different
dimensions raise UnitError.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

# unit -> (dimension, factor: value in the dimension's file unit, first in each group)
_UNITS: Dict[str, Tuple[str, float]] = {
    # energy (files: J)
    "J": ("energy", 1.0),
    "kJ": ("energy", 1e3),
    "MJ": ("energy", 1e6),
    "GJ": ("energy", 1e9),
    "TJ": ("energy", 1e12),
    "Wh": ("energy", 3.6e3),
    "kWh": ("energy", 3.6e6),
    "MWh": ("energy", 3.6e9),
    "GWh": ("energy", 3.6e12),
    # power (files: W)
    "W": ("power", 1.0),
    "kW": ("power", 1e3),
    "MW": ("power", 1e6),
    # time (files: s)
    "s": ("time", 1.0),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "day": ("time", 86400.0),
    "days": ("time", 86400.0),
    # CO2-equivalent mass (files: kgCO2e)
    "kgCO2e": ("co2e", 1.0),
    "gCO2e": ("co2e", 1e-3),
    "tCO2e": ("co2e", 1e3),
    "ktCO2e": ("co2e", 1e6),
    # carbon intensity (files: kgCO2e/J)
    "kgCO2e/J": ("co2e/energy", 1.0),
    "gCO2e/kWh": ("co2e/energy", 1e-3 / 3.6e6),
    "kgCO2e/kWh": ("co2e/energy", 1.0 / 3.6e6),
    "kgCO2e/MWh": ("co2e/energy", 1.0 / 3.6e9),
    "tCO2e/MWh": ("co2e/energy", 1e3 / 3.6e9),
    # compute (files: FLOP)
    "FLOP": ("compute", 1.0),
    "GFLOP": ("compute", 1e9),
    "TFLOP": ("compute", 1e12),
    "PFLOP": ("compute", 1e15),
    "EFLOP": ("compute", 1e18),
    "PF-days": ("compute", 1e15 * 86400.0),  # one petaFLOP/s for a day: 8.64e19 FLOP
    # memory (files: B; decimal multiples, as the catalog's "80 GB"; binary ones named as such)
    "B": ("bytes", 1.0),
    "kB": ("bytes", 1e3),
    "MB": ("bytes", 1e6),
    "GB": ("bytes", 1e9),
    "TB": ("bytes", 1e12),
    "KiB": ("bytes", 1024.0),
    "MiB": ("bytes", 1024.0 ** 2),
    "GiB": ("bytes", 1024.0 ** 3),
    # rates (files: 1/s; requests, inferences)
    "1/s": ("rate", 1.0),
    "1/min": ("rate", 1.0 / 60.0),
    "1/h": ("rate", 1.0 / 3600.0),
    "1/day": ("rate", 1.0 / 86400.0),
    # counts and ratios (files: "1")
    "1": ("dimensionless", 1.0),
    "%": ("dimensionless", 1e-2),
}

# The unit each file unit is best shown in (report tables, plots).
FRIENDLY: Dict[str, str] = {
    "J": "MWh",
    "W": "W",
    "s": "days",
    "kgCO2e": "tCO2e",
    "kgCO2e/J": "gCO2e/kWh",
    "FLOP": "PF-days",
}


class UnitError(ValueError):
    """An unknown unit, or a conversion between units of different dimensions."""


def known_units() -> List[str]:
    """Every unit convert() accepts."""
    return list(_UNITS)


def _lookup(units: Any) -> Tuple[str, float]:
    if not isinstance(units, str):
        raise UnitError(f"units should be a string, got {units!r}")
    if units == "":
        raise UnitError("'' (text) has no units to convert")
    try:
        return _UNITS[units]
    except KeyError:
        raise UnitError(
            f"unknown unit {units!r}; known units: {', '.join(_UNITS)}"
        ) from None


def dimension(units: str) -> str:
    """The dimension of a unit: "energy", "power", "time", "co2e", "co2e/energy", ..."""
    return _lookup(units)[0]


def convert(value: Any, from_units: str, to_units: str) -> Any:
    """`value` (a number, numpy array, pandas Series or DataFrame) from `from_units` to `to_units`.

    Series keep their index and name; lists become numpy arrays. NaN stays NaN.
    Raises UnitError for an unknown unit or units of different dimensions.
    """
    from_dim, from_factor = _lookup(from_units)
    to_dim, to_factor = _lookup(to_units)
    if from_dim != to_dim:
        raise UnitError(
            f"cannot convert {from_units!r} ({from_dim}) to {to_units!r} ({to_dim})"
        )
    if isinstance(value, (list, tuple)):
        value = np.asarray(value, dtype=float)
    if from_units == to_units:
        return value
    # Multiply first, then divide: J -> MWh is value / 3.6e9, exact where the input is.
    return value * from_factor / to_factor


def to_friendly(value: Any, units: str) -> Tuple[Any, str]:
    """(value in its friendly unit, that unit), e.g. (1287.0, "MWh") for (4.6332e12, "J").

    Units without a friendly form are returned unchanged.
    """
    target = FRIENDLY.get(units)
    if target is None:
        return value, units
    return convert(value, units, target), target
