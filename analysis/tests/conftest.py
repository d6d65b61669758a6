"""Fixtures: small output files written with h5py exactly as docs/output-format.md says.

The standard file holds three training jobs (numbers are hand-computed in the comments; the
tests check against the same numbers):

  job        facility_energy              co2e_location           co2e_market
  gpt3       4.6332e12 J  = 1287 MWh      552,000 kg = 552 t      NaN (none given)
  bert-ft    1.8e11 J     = 50 MWh        20,000 kg  = 20 t       1,000 kg = 1 t
  sweep-τ    4.32e7 J     = 0.012 MWh     4.8 kg     = 0.0048 t   NaN
  totals     4.8132432e12 J = 1337.012 MWh  572,004.8 kg = 572.0048 t   NaN (gpt3 has none)
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import h5py
import numpy as np
import pytest

NAN = math.nan
TEXT = h5py.string_dtype("utf-8")  # variable-length UTF-8

SCENARIO_GIVEN = (
    "schema_version: 1\n"
    "scenario: {name: test-run, seed: 42}\n"
    "# Rechenzentrum Zürich – « 1,287 MWh »\n"
    "training:\n"
    "  - id: gpt3\n"
    "    facility_energy: \"1,287 MWh\"\n"
)
SCENARIO_RESOLVED = (
    "schema_version: 1\n"
    "scenario:\n"
    "  name: test-run\n"
    "  seed: 42\n"
    "training:\n"
    "  - id: gpt3\n"
    "    duration_s: 1278720\n"
)

ROOT_ATTRS: Dict[str, Any] = OrderedDict(
    format_version=np.int64(1),
    dlcarbon_version="0.1.0",
    git_sha="abc123def456",
    created="2026-11-26T18:00:00Z",
    seed=np.int64(42),
    scenario_name="test-run",
)


def _training_columns() -> "OrderedDict[str, Tuple[Any, str]]":
    # gpt3: 10,000 accelerators for 14.8 days = 1,278,720 s (14.8 x 86,400);
    #   IT 4.212e12 J (1170 MWh) x PUE 1.1 = 4.6332e12 J (1287 MWh); 552,000 kgCO2e.
    # bert-ft: 64 for 2 days = 172,800 s; IT 1.5e11 J x PUE 1.2 = 1.8e11 J (50 MWh);
    #   20,000 kgCO2e location-based, 1,000 kgCO2e market-based.
    # sweep-τ: 4 x 300 W x 10 h (36,000 s) = 4.32e7 J (0.012 MWh), PUE 1.0; 4.8 kgCO2e.
    accelerators = np.array([10000, 64, 4], dtype=np.int64)
    duration = np.array([1278720.0, 172800.0, 36000.0])
    it_energy = np.array([4.212e12, 1.5e11, 4.32e7])
    pue = np.array([1.1, 1.2, 1.0])
    facility = np.array([4.6332e12, 1.8e11, 4.32e7])
    co2e_location = np.array([552000.0, 20000.0, 4.8])
    co2e_market = np.array([NAN, 1000.0, NAN])
    cols: "OrderedDict[str, Tuple[Any, str]]" = OrderedDict()
    cols["job"] = (["gpt3", "bert-ft", "sweep-τ"], "")
    cols["model"] = (["gpt-3", "bert-base", ""], "")
    cols["hardware"] = (["v100", "tpu-v3", "rtx-3090"], "")
    cols["datacenter"] = (["dc-us", "rechenzentrum-zürich", "lab"], "")
    cols["region"] = (["us-average", "ch", "de"], "")
    cols["accelerators"] = (accelerators, "1")
    cols["duration"] = (duration, "s")
    cols["accelerator_time"] = (accelerators * duration, "s")
    cols["power_per_accelerator"] = (it_energy / (accelerators * duration), "W")
    cols["it_energy"] = (it_energy, "J")
    cols["pue"] = (pue, "1")
    cols["facility_energy"] = (facility, "J")
    cols["intensity_location"] = (co2e_location / facility, "kgCO2e/J")
    cols["co2e_location"] = (co2e_location, "kgCO2e")
    cols["intensity_market"] = (co2e_market / facility, "kgCO2e/J")
    cols["co2e_market"] = (co2e_market, "kgCO2e")
    cols["tokens"] = (np.array([3.0e11, NAN, NAN]), "1")
    cols["flops"] = (np.array([3.14e23, NAN, NAN]), "FLOP")
    return cols


def _totals_columns() -> "OrderedDict[str, Tuple[Any, str]]":
    cols: "OrderedDict[str, Tuple[Any, str]]" = OrderedDict()
    cols["facility_energy"] = (np.array([4.8132432e12]), "J")  # 4.6332e12 + 1.8e11 + 4.32e7
    cols["it_energy"] = (np.array([4.3620432e12]), "J")  # 4.212e12 + 1.5e11 + 4.32e7 (1,211.679 MWh)
    cols["co2e_location"] = (np.array([572004.8]), "kgCO2e")  # 552,000 + 20,000 + 4.8
    cols["co2e_market"] = (np.array([NAN]), "kgCO2e")  # gpt3 has no market factor
    cols["jobs"] = (np.array([3], dtype=np.int64), "1")
    return cols


def write_table(f: h5py.File, name: str, columns: "OrderedDict[str, Tuple[Any, str]]") -> None:
    """A table group: one 1-D dataset per column with a `units` attribute, and a `columns`
    attribute listing them in order. Text columns are variable-length UTF-8 strings."""
    g = f.require_group(name)
    for column, (values, units) in columns.items():
        if isinstance(values, list) and all(isinstance(v, str) for v in values):
            ds = g.create_dataset(column, data=values, dtype=TEXT)
        else:
            arr = np.asarray(values)
            dtype = "<i8" if np.issubdtype(arr.dtype, np.integer) else "<f8"
            ds = g.create_dataset(column, data=arr, dtype=dtype)
        ds.attrs.create("units", units, dtype=TEXT)
    g.attrs.create("columns", ",".join(columns), dtype=TEXT)


def write_run_file(
    path: Path,
    *,
    attrs: Optional[Dict[str, Any]] = None,
    training: Optional["OrderedDict[str, Tuple[Any, str]]"] = None,
    totals: Optional["OrderedDict[str, Tuple[Any, str]]"] = None,
    given: str = SCENARIO_GIVEN,
    resolved: str = SCENARIO_RESOLVED,
) -> Path:
    """Writes an output file per docs/output-format.md; arguments replace the standard parts."""
    root = OrderedDict(ROOT_ATTRS)
    root.update(attrs or {})
    with h5py.File(path, "w") as f:
        for key, value in root.items():
            if isinstance(value, str):
                f.attrs.create(key, value, dtype=TEXT)
            else:
                f.attrs[key] = value
        scenario = f.create_group("scenario")
        scenario.create_dataset("given", data=given, dtype=TEXT)
        scenario.create_dataset("resolved", data=resolved, dtype=TEXT)
        write_table(f, "summary/training", training if training is not None else _training_columns())
        write_table(f, "summary/totals", totals if totals is not None else _totals_columns())
    return path


@pytest.fixture
def write_run(tmp_path):
    """write_run(name="run.h5", **parts) -> path of a new file in tmp_path (see write_run_file)."""

    def make(name: str = "run.h5", **parts: Any) -> Path:
        return write_run_file(tmp_path / name, **parts)

    return make


@pytest.fixture
def run_file(write_run) -> Path:
    """The standard three-job file."""
    return write_run()


@pytest.fixture
def training_columns():
    """The standard training columns, to modify before write_run(training=...)."""
    return _training_columns()


@pytest.fixture
def totals_columns():
    return _totals_columns()


@pytest.fixture
def scenario_texts():
    """(given, resolved) as written to the standard file."""
    return SCENARIO_GIVEN, SCENARIO_RESOLVED
