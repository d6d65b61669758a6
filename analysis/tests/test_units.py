"""dlcarbon_analysis.units: conversions checked against hand-computed numbers."""

import math

import numpy as np
import pandas as pd
import pytest

from dlcarbon_analysis import UnitError, convert, dimension, known_units
from dlcarbon_analysis.units import FRIENDLY, to_friendly


# --- energy --------------------------------------------------------------------------------

def test_mwh_to_joules():
    # 1,287 MWh x 3.6e9 J/MWh = 4.6332e12 J (Patterson et al. 2021, GPT-3)
    assert convert(1287, "MWh", "J") == pytest.approx(4.6332e12, rel=1e-12)


def test_joules_to_mwh():
    # 4.6332e12 J / 3.6e9 J/MWh = 1,287 MWh
    assert convert(4.6332e12, "J", "MWh") == pytest.approx(1287.0, rel=1e-12)


def test_joules_to_kwh():
    # 4.6332e12 J / 3.6e6 J/kWh = 1,287,000 kWh
    assert convert(4.6332e12, "J", "kWh") == pytest.approx(1.287e6, rel=1e-12)


def test_kwh_to_mwh():
    # 1 kWh = 3.6e6 J = 1e-3 MWh; 656,347 kWh = 656.347 MWh
    assert convert(656347, "kWh", "MWh") == pytest.approx(656.347, rel=1e-12)


def test_wh_to_j():
    # 1 Wh = 1 W x 3,600 s = 3,600 J
    assert convert(1, "Wh", "J") == pytest.approx(3600.0)


def test_gwh_to_mwh():
    assert convert(1.5, "GWh", "MWh") == pytest.approx(1500.0)  # 1.5 x 1,000


# --- CO2e ----------------------------------------------------------------------------------

def test_kg_to_tonnes():
    # 552,000 kgCO2e / 1,000 kg/t = 552 tCO2e
    assert convert(552000.0, "kgCO2e", "tCO2e") == pytest.approx(552.0, rel=1e-12)


def test_tonnes_to_kg():
    # 284 tCO2e x 1,000 kg/t = 284,000 kgCO2e
    assert convert(284.0, "tCO2e", "kgCO2e") == pytest.approx(284000.0)


def test_grams_to_kg():
    assert convert(4800.0, "gCO2e", "kgCO2e") == pytest.approx(4.8)  # 4,800 g / 1,000


def test_intensity_g_per_kwh_to_kg_per_j():
    # 429 gCO2e/kWh = 0.429 kgCO2e / 3.6e6 J = 1.191666...e-7 kgCO2e/J
    assert convert(429, "gCO2e/kWh", "kgCO2e/J") == pytest.approx(1.1916666666e-7, rel=1e-9)


def test_intensity_kg_per_j_to_g_per_kwh():
    # 552,000 kg / 4.6332e12 J = 1.191401e-7 kgCO2e/J -> x 3.6e9 g/kWh per kg/J = 428.90 g/kWh
    assert convert(552000.0 / 4.6332e12, "kgCO2e/J", "gCO2e/kWh") == pytest.approx(428.904, rel=1e-5)


def test_intensity_t_per_mwh_equals_kg_per_kwh():
    # 1 tCO2e/MWh = 1,000 kg / 1,000 kWh = 1 kgCO2e/kWh
    assert convert(0.429, "tCO2e/MWh", "kgCO2e/kWh") == pytest.approx(0.429)


# --- time, power, compute, ratios ----------------------------------------------------------

def test_seconds_to_hours_and_days():
    # 14.8 days x 86,400 s/day = 1,278,720 s = 355.2 h
    assert convert(1278720.0, "s", "h") == pytest.approx(355.2)
    assert convert(1278720.0, "s", "days") == pytest.approx(14.8)
    assert convert(1278720.0, "s", "day") == pytest.approx(14.8)


def test_hours_to_seconds():
    assert convert(10, "h", "s") == pytest.approx(36000.0)  # 10 x 3,600
    assert convert(90, "min", "h") == pytest.approx(1.5)  # 90 x 60 s / 3,600 s


def test_watts():
    assert convert(330.0, "W", "kW") == pytest.approx(0.33)  # 330 / 1,000
    assert convert(2.5, "MW", "W") == pytest.approx(2.5e6)


def test_pf_days():
    # 1 PF-day = 1e15 FLOP/s x 86,400 s = 8.64e19 FLOP; GPT-3: 3,640 PF-days = 3.14496e23 FLOP
    assert convert(3640, "PF-days", "FLOP") == pytest.approx(3.14496e23, rel=1e-12)
    assert convert(3.14e23, "FLOP", "PF-days") == pytest.approx(3634.259, rel=1e-6)  # 3.14e23 / 8.64e19


def test_percent():
    assert convert(0.25, "1", "%") == pytest.approx(25.0)


# --- containers ----------------------------------------------------------------------------

def test_series_keeps_index_and_name_and_nan():
    s = pd.Series([4.6332e12, 1.8e11, math.nan], index=["gpt3", "bert", "x"], name="facility_energy")
    out = convert(s, "J", "MWh")
    assert isinstance(out, pd.Series)
    assert out.name == "facility_energy"
    assert list(out.index) == ["gpt3", "bert", "x"]
    # 4.6332e12 / 3.6e9 = 1,287; 1.8e11 / 3.6e9 = 50
    assert out.iloc[0] == pytest.approx(1287.0)
    assert out.iloc[1] == pytest.approx(50.0)
    assert math.isnan(out.iloc[2])
    assert s.iloc[0] == 4.6332e12  # input untouched


def test_numpy_array_and_list():
    arr = convert(np.array([3.6e9, 7.2e9]), "J", "MWh")
    np.testing.assert_allclose(arr, [1.0, 2.0])
    lst = convert([1000.0, 2500.0], "kgCO2e", "tCO2e")
    assert isinstance(lst, np.ndarray)
    np.testing.assert_allclose(lst, [1.0, 2.5])


def test_integer_input():
    assert convert(np.int64(2), "days", "h") == pytest.approx(48.0)


def test_same_units_returns_value_unchanged():
    s = pd.Series([1.0, 2.0])
    assert convert(s, "J", "J") is s
    assert convert(5, "1", "1") == 5


def test_round_trip():
    for a, b in [("J", "MWh"), ("kgCO2e", "tCO2e"), ("s", "days"), ("kgCO2e/J", "gCO2e/kWh")]:
        assert convert(convert(123.456, a, b), b, a) == pytest.approx(123.456, rel=1e-12)


# --- errors --------------------------------------------------------------------------------

def test_incompatible_units_raise():
    with pytest.raises(UnitError) as info:
        convert(1.0, "J", "tCO2e")
    message = str(info.value)
    assert "'J'" in message and "'tCO2e'" in message
    assert "energy" in message and "co2e" in message


@pytest.mark.parametrize("a,b", [("s", "MWh"), ("W", "J"), ("kgCO2e", "kgCO2e/J"), ("1", "J"), ("FLOP", "s")])
def test_incompatible_pairs(a, b):
    with pytest.raises(UnitError, match="cannot convert"):
        convert(1.0, a, b)


def test_unknown_unit():
    with pytest.raises(UnitError, match="unknown unit 'furlong'"):
        convert(1.0, "furlong", "J")
    with pytest.raises(UnitError, match="unknown unit 'mwh'"):  # units are case-sensitive
        convert(1.0, "J", "mwh")


def test_text_units_cannot_convert():
    with pytest.raises(UnitError, match="text"):
        convert("gpt3", "", "J")


def test_units_must_be_strings():
    with pytest.raises(UnitError, match="string"):
        convert(1.0, None, "J")


def test_unit_error_is_value_error():
    assert issubclass(UnitError, ValueError)


# --- helpers -------------------------------------------------------------------------------

def test_dimension_and_known_units():
    assert dimension("MWh") == "energy"
    assert dimension("tCO2e") == "co2e"
    assert dimension("days") == "time"
    units = known_units()
    for u in ["J", "kWh", "MWh", "kgCO2e", "tCO2e", "s", "h", "days", "W", "kgCO2e/J", "1", "FLOP"]:
        assert u in units


def test_every_file_unit_has_a_friendly_unit_of_its_dimension():
    for file_unit, friendly in FRIENDLY.items():
        assert dimension(file_unit) == dimension(friendly)


def test_to_friendly():
    value, units = to_friendly(4.6332e12, "J")
    assert units == "MWh" and value == pytest.approx(1287.0)
    value, units = to_friendly(552000.0, "kgCO2e")
    assert units == "tCO2e" and value == pytest.approx(552.0)
    assert to_friendly(3.0, "1") == (3.0, "1")  # no friendlier form


def test_bytes_and_rates_the_files_use():
    # "B" and "1/s" are units of the output files (docs/output-format.md); before session 34
    # convert() refused them.
    assert convert(80e9, "B", "GB") == pytest.approx(80.0)
    assert convert(1.0, "GiB", "B") == 1024.0 ** 3
    assert convert(318.0, "1/s", "1/day") == pytest.approx(318.0 * 86400)
    assert "B" in known_units() and "1/s" in known_units()
    with pytest.raises(UnitError):
        convert(1.0, "B", "1/s")
