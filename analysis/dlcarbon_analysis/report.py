"""Training footprint report: energy in MWh, emissions in tCO2e.

    python3 -m dlcarbon_analysis.report FILE.h5 [--plot out.png]

prints the run's attributes, one row per training job and the jobs' totals (for a lifecycle run
also the lifecycle's total); --plot also saves a bar chart of facility energy and CO2e per job (for
a lifecycle run, a chart stacked by phase; a sweep or calibration file has no such chart: exit 1).
For a calibration file (`dlcarbon calibrate`) it prints the file's attributes and calibration
tables. Exit codes: 0 ok, 1 the plot could not be written, 2 bad arguments or a file that is not a
readable dlcarbon output file.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from .load import DlcarbonFormatError, Run, open_run
from .units import UnitError, convert

RunOrPath = Union[Run, str, "os.PathLike[str]"]

# (column in /summary/training, units to show it in or None to keep, column in the summary)
TRAINING_COLUMNS: List[Tuple[str, Optional[str], str]] = [
    ("job", None, "job"),
    ("model", None, "model"),
    ("hardware", None, "hardware"),
    ("datacenter", None, "datacenter"),
    ("region", None, "region"),
    ("accelerators", None, "accelerators"),
    ("duration", "days", "duration_days"),
    ("it_energy", "MWh", "it_energy_MWh"),
    ("pue", None, "pue"),
    ("facility_energy", "MWh", "facility_energy_MWh"),
    ("co2e_location", "tCO2e", "co2e_location_tCO2e"),
    ("co2e_market", "tCO2e", "co2e_market_tCO2e"),
]

# The same for /summary/inference (energy per inference in J, totals in kWh).
INFERENCE_COLUMNS: List[Tuple[str, Optional[str], str]] = [
    ("job", None, "job"),
    ("model", None, "model"),
    ("hardware", None, "hardware"),
    ("layout", None, "layout"),
    ("input_layout", None, "input_layout"),
    ("batch", None, "batch"),
    ("inferences", None, "inferences"),
    ("batch_time", "s", "batch_time_s"),
    ("facility_energy_per_inference", "J", "facility_energy_per_inference_J"),
    ("facility_energy", "kWh", "facility_energy_kWh"),
    ("co2e_location", "kgCO2e", "co2e_location_kgCO2e"),
]

# The same for /summary/totals.
TOTALS_COLUMNS: List[Tuple[str, Optional[str], str]] = [
    ("jobs", None, "jobs"),
    ("it_energy", "MWh", "it_energy_MWh"),
    ("facility_energy", "MWh", "facility_energy_MWh"),
    ("co2e_location", "tCO2e", "co2e_location_tCO2e"),
    ("co2e_market", "tCO2e", "co2e_market_tCO2e"),
]


def _as_run(run: RunOrPath) -> Run:
    return run if isinstance(run, Run) else open_run(run)


def _require(run: Run, table: str, df: pd.DataFrame, columns: Sequence[str]) -> None:
    """DlcarbonFormatError naming the columns of `columns` that /`table` lacks (since session 46, a
    review: the helpers below raised a bare KeyError)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DlcarbonFormatError(run.path, f"table /{table} lacks column(s) {', '.join(missing)}")


def _present(run: Run, table: str, spec: List[Tuple[str, Optional[str], str]]) -> pd.DataFrame:
    df = run.table(table)
    units = df.attrs["units"]
    _require(run, table, df, [src for src, _, _ in spec])
    out = pd.DataFrame(index=df.index)
    out_units = {}
    for src, to_units, name in spec:
        if to_units is None:
            out[name] = df[src]
            out_units[name] = units[src]
        else:
            try:
                values = df[src].astype(float)
            except (ValueError, TypeError):
                # (Since session 46, a review: a pandas traceback, exit 1.)
                raise DlcarbonFormatError(run.path, f"table /{table}, column '{src}' is not numeric") from None
            try:
                out[name] = convert(values, units[src], to_units)
            except UnitError as e:
                raise DlcarbonFormatError(run.path, f"table /{table}, column '{src}': {e}") from None
            out_units[name] = to_units
    out.attrs["units"] = out_units
    out.attrs["table"] = table
    out.attrs["source"] = str(run.path)
    return out


def training_summary(run: RunOrPath) -> pd.DataFrame:
    """One row per training job: ids, accelerators, duration_days, it_energy_MWh, pue,
    facility_energy_MWh, co2e_location_tCO2e, co2e_market_tCO2e (NaN where not given).

    `run` is a Run or a path. df.attrs["units"] gives each column's units.
    """
    return _present(_as_run(run), "summary/training", TRAINING_COLUMNS)


def inference_summary(run: RunOrPath) -> pd.DataFrame:
    """One row per inference job: ids, layout, batch, inferences, batch_time_s,
    facility_energy_per_inference_J, facility_energy_kWh, co2e_location_kgCO2e.

    A file without inference jobs has no /summary/inference: its frame is empty, with these
    columns, as /summary/training's is in a file without training jobs (since session 42; it
    raised DlcarbonFormatError)."""
    r = _as_run(run)
    if "summary/inference" not in r.tables and "summary/training" in r.tables:
        # (A run file: a sweep or calibration file is not one, and raises DlcarbonFormatError as
        # training_summary() does; since session 46, a review: an empty frame.)
        # (The units of the pass-through columns as dlcarbon writes them: text "", counts "1".)
        # The dtypes as dlcarbon writes them too: text, `batch` int64, the rest (`inferences`
        # included) float64 (since session 44, a review: `batch` was float64 here).
        text = {"job", "model", "hardware", "layout", "input_layout"}
        dtypes = {src: (object if src in text else "int64" if src == "batch" else float) for src, _, _ in INFERENCE_COLUMNS}
        out = pd.DataFrame({name: pd.Series([], dtype=dtypes[src]) for src, _, name in INFERENCE_COLUMNS})
        out.attrs["units"] = {name: (to if to is not None else ("" if src in text else "1")) for src, to, name in INFERENCE_COLUMNS}
        out.attrs["table"] = "summary/inference"
        out.attrs["source"] = str(r.path)
        return out
    return _present(r, "summary/inference", INFERENCE_COLUMNS)


def totals_summary(run: RunOrPath) -> pd.DataFrame:
    """The one-row /summary/totals table: jobs, it_energy_MWh, facility_energy_MWh,
    co2e_location_tCO2e, co2e_market_tCO2e (NaN if any job lacks a market factor).

    These are the training and inference jobs' totals, one run each (a job's `repeat`s and the
    lifecycle's deployments are not in them; a lifecycle run's total is in /lifecycle/totals)."""
    return _present(_as_run(run), "summary/totals", TOTALS_COLUMNS)


def _lifecycle_total(run: Run) -> pd.DataFrame:
    """One row: the sum of /lifecycle/totals over every entity (deployments and training runs),
    site, hardware and phase: energy_MWh, co2e_location_tCO2e, co2e_market_tCO2e (market-based
    falling back to location-based where a site has no market factor), embodied included."""
    rows = _present(run, "lifecycle/totals", [("energy", "MWh", "energy_MWh"),
                                              ("co2e_location", "tCO2e", "co2e_location_tCO2e"),
                                              ("co2e_market", "tCO2e", "co2e_market_tCO2e")])
    total = rows.sum(skipna=False).to_frame().T
    # A deployment that cannot run has no rows there and n/a figures in /lifecycle/deployments: the
    # total is n/a too, as /summary/totals and a sweep point's (since session 46, a review: the sum
    # of the others, or 0).
    if "lifecycle/deployments" in run.tables:
        deployments = run.table("lifecycle/deployments")
        _require(run, "lifecycle/deployments", deployments, ["energy"])
        try:
            energy = deployments["energy"].astype(float)
        except (ValueError, TypeError):
            raise DlcarbonFormatError(run.path, "table /lifecycle/deployments, column 'energy' is not numeric") from None
        if energy.isna().any():
            total.loc[:, :] = float("nan")
    return total


DEPLOYMENT_COLUMNS = [
    ("deployment", None, "deployment"),
    ("model", None, "model"),
    ("requests", None, "requests"),
    ("useful_requests", None, "useful_requests"),
    ("unserved_requests", None, "unserved_requests"),
    ("energy", "MWh", "energy_MWh"),
    ("co2e_location", "tCO2e", "co2e_location_tCO2e"),
    ("co2e_market", "tCO2e", "co2e_market_tCO2e"),
    ("co2e_per_inference", "gCO2e", "gCO2e_per_inference"),
    ("co2e_per_useful_inference", "gCO2e", "gCO2e_per_useful_inference"),
    ("peak_replicas", None, "peak_replicas"),
    ("mean_utilisation", None, "mean_utilisation"),
]


def deployment_summary(run: RunOrPath) -> pd.DataFrame:
    """One row per deployment of a lifecycle run (/lifecycle/deployments): requests served,
    useful and unserved; energy_MWh and tCO2e over the horizon, embodied included; gCO2e per
    inference and per useful inference; peak replicas (devices for edge deployments)."""
    return _present(_as_run(run), "lifecycle/deployments", DEPLOYMENT_COLUMNS)


def lifecycle_series(run: RunOrPath, by: Sequence[str] = ("phase",), value: str = "co2e_location") -> pd.DataFrame:
    """The lifecycle time series (/lifecycle/timeseries) as a table of bins x groups: rows are
    bin starts (UTC timestamps), columns the values of `by` (any of phase, site, region,
    hardware, model), cells the sum of `value` (energy J, co2e_location or co2e_market kgCO2e,
    requests) in SI units."""
    if isinstance(by, str):
        by = (by,)  # by="phase" means the one column, not its letters
    groupings = ("phase", "site", "region", "hardware", "model")
    values = ("energy", "co2e_location", "co2e_market", "requests")
    # A grouping or value the table has not is said with the ones it has (since session 47, a
    # review: a bare KeyError).
    for b in by:
        if b not in groupings:
            raise ValueError(f"lifecycle_series: by={b!r} is not a grouping of /lifecycle/timeseries; use any of {', '.join(groupings)}")
    if value not in values:
        raise ValueError(f"lifecycle_series: value={value!r} is not a value of /lifecycle/timeseries; use one of {', '.join(values)}")
    r = _as_run(run)
    df = r.table("lifecycle/timeseries")
    bins = r.table("lifecycle/bins") if "lifecycle/bins" in r.tables else None
    # pandas (1.5, Debian 12) holds timestamps in nanoseconds, up to 2262-04-11; a horizon may run
    # to 1,000 years. Past that the index is the bins' unix seconds (float), named bin_start_unix.
    # The bins' starts too: an empty first bin may start before 1677 where no row does (since
    # session 41, a review: the reindex below raised OutOfBoundsDatetime).
    ends = list(df["bin_start_unix"]) + ([] if bins is None else list(bins["bin_start_unix"]) + list(bins["bin_end_unix"]))
    as_time = all(_in_timestamp_range(t) for t in ends)
    name = "bin_start" if as_time else "bin_start_unix"

    def to_index(unix_s: pd.Series) -> pd.Index:
        if as_time:
            return pd.DatetimeIndex(pd.to_datetime(unix_s, unit="s", utc=True), name=name)
        return pd.Index(unix_s.to_numpy(dtype=float), name=name)

    if as_time:
        df = df.assign(bin_start=to_index(df["bin_start_unix"]))
    out = df.pivot_table(index=name, columns=list(by), values=value, aggfunc="sum", fill_value=0.0)
    if bins is not None:
        # Every bin of the horizon, the empty ones as zeros (files since session 33 list them).
        out = out.reindex(to_index(bins["bin_start_unix"]), fill_value=0.0)
        last = float(bins["bin_end_unix"].iloc[-1]) if len(bins) else None
        out.attrs["horizon_end"] = None if last is None else (pd.to_datetime(last, unit="s", utc=True) if as_time else last)
    out.attrs["units"] = {value: df.attrs["units"][value]}
    return out


def _in_timestamp_range(unix_s: float) -> bool:
    """Whether a time (unix seconds) is a pandas Timestamp (nanoseconds since 1970 in an int64)."""
    return pd.Timestamp.min.value / 1e9 < float(unix_s) < pd.Timestamp.max.value / 1e9


SWEEP_COLUMNS = [
    ("status", None, "status"),
    ("reason", None, "reason"),
    ("facility_energy", "MWh", "facility_energy_MWh"),
    ("co2e_location", "tCO2e", "co2e_location_tCO2e"),
    ("co2e_market", "tCO2e", "co2e_market_tCO2e"),
    ("accelerator_time", "h", "accelerator_hours"),
]


def sweep_parameters(run: RunOrPath) -> List[str]:
    """The swept keys of a sweep file (/sweep/parameters), in the sweep file's order."""
    r = _as_run(run)
    params = r.table("sweep/parameters")
    _require(r, "sweep/parameters", params, ["key"])
    return list(params["key"])


def sweep_points(run: RunOrPath) -> pd.DataFrame:
    """One row per point of a sweep file (/sweep/points), indexed by point: the value of every
    swept key (a number, or the value's text), status ("ok" or "cannot run") and reason,
    facility_energy_MWh, co2e_location_tCO2e, co2e_market_tCO2e and accelerator_hours (NaN
    for a point that cannot run, and market CO2e where a job has no market factor)."""
    run = _as_run(run)
    keys = sweep_parameters(run)
    if "sweep/points" not in run.tables and "sweep/info" in run.tables:
        # A shard or merge with no points done: the writer leaves tables without rows out. The frame
        # has the columns, dtypes and units a shard with points would have: a key is a number in its
        # `unit` ("1" without one) where the writer says so (`numeric`, since session 41), else text.
        params = run.table("sweep/parameters")
        if "numeric" in params:
            text_keys = {key for key, numeric in zip(params["key"], params["numeric"]) if not numeric}
        else:
            # Files before session 41: guessed from the listed values, as the writer reads them (a
            # whole decimal, finite; "nan", "inf" and "1_0" are text), a grid's unit after the number.
            def is_number(text: str, unit: str) -> bool:
                if unit and text.endswith(" " + unit):
                    text = text[: -len(unit) - 1]
                return re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text) is not None

            text_keys = {key for key, values, unit in zip(params["key"], params["values"], params["unit"])
                         if values and not all(is_number(v, str(unit or "")) for v in str(values).split(" | "))}
        key_units = {key: ("" if key in text_keys else (unit or "1")) for key, unit in zip(params["key"], params["unit"])}
        columns = {"point": pd.Series(dtype="int64")}
        columns.update({k: pd.Series(dtype=object if k in text_keys else float) for k in keys})
        columns.update({n: pd.Series(dtype=object if n in ("status", "reason") else float) for _, _, n in SWEEP_COLUMNS})
        df = pd.DataFrame(columns).set_index("point")
        df.attrs["units"] = {**{k: key_units.get(k, "") for k in keys}, **{n: (u or "") for _, u, n in SWEEP_COLUMNS}}
        df.attrs["table"] = "sweep/points"
        df.attrs["source"] = str(run.path)
        return df
    df = _present(run, "sweep/points", [("point", None, "point")] + [(k, None, k) for k in keys] + SWEEP_COLUMNS)
    units = df.attrs["units"]
    df = df.set_index("point")
    df.attrs["units"] = {k: v for k, v in units.items() if k != "point"}
    return df


def format_number(x: float) -> str:
    """At least four significant digits without an exponent for ordinary sizes
    (1287 -> "1287", 552 -> "552.0", 0.048 -> "0.04800"); "n/a" for NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    x = float(x)
    if math.isinf(x):
        return str(x)
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1e15 or a < 1e-3:
        return f"{x:.4g}"
    decimals = max(0, 3 - math.floor(math.log10(a)))
    return f"{x:.{decimals}f}"


def _job_tables(run: RunOrPath, kind: str, columns: Sequence[str]):
    """(job, table) for each non-empty /training/<job>/<kind> table of a run, in the order of the
    jobs in /summary/training (the scenario's), any others after them by name; each with `columns`
    (else DlcarbonFormatError)."""
    run = _as_run(run)
    jobs = [name.split("/")[1] for name in run.tables
            if len(name.split("/")) == 3 and name.split("/")[0] == "training" and name.split("/")[2] == kind]
    order = list(run.table("summary/training")["job"]) if "summary/training" in run.tables else []
    rank = {job: i for i, job in enumerate(order)}
    for job in sorted(jobs, key=lambda j: (rank.get(j, len(order)), j)):
        t = run.table(f"training/{job}/{kind}")
        if not t.empty:
            _require(run, f"training/{job}/{kind}", t, columns)
            yield job, t


def step_breakdown(run: RunOrPath) -> pd.DataFrame:
    """Where each first-principles job's step goes (/training/<job>/step): one row per job, one
    column per component (compute, communication of each kind, pipeline bubble, optimizer) with its
    share of the step; `step_time_s` is the step. Empty when no job was costed from first
    principles. The shares add up to 1 (docs/output-format.md)."""
    rows = {}
    for job, t in _job_tables(run, "step", ["component", "share", "time"]):
        row = dict(zip(t["component"], t["share"]))
        row["step_time_s"] = float(t["time"].sum())
        rows[job] = row
    if not rows:
        # Its step column and job index, empty (since session 46, a review: no columns).
        return pd.DataFrame({"step_time_s": pd.Series(dtype="float64")}, index=pd.Index([], dtype=object, name="job"))
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "job"
    return df


# The numeric columns of /training/<job>/stages besides device and busiest (docs/output-format.md).
STAGE_COLUMNS = ["layers", "forward", "backward", "tensor_communication", "context_communication", "expert_all_to_all",
                 "slot", "activations", "tail"]


def stage_loads(run: RunOrPath) -> pd.DataFrame:
    """Each first-principles job's pipeline devices (/training/<job>/stages): one row per job and
    device, indexed by (job, device), with the layers the device holds, its forward, backward,
    tensor-parallel, context-parallel (`context_communication`) and all-to-all seconds a
    microbatch, its slot, the activations it keeps, its end-of-step `tail`, and
    `busiest` (True for the device that paces the step), plus `slot_share`, its slot over the
    busiest one's (1 everywhere for a balanced partition). Empty when no job was costed from first
    principles (docs/output-format.md)."""
    frames = []
    for job, t in _job_tables(run, "stages", ["device", "slot", "busiest"]):
        t = t.copy()
        t["busiest"] = t["busiest"].astype(bool)
        t["slot_share"] = t["slot"] / float(t["slot"].max())
        t.insert(0, "job", job)
        frames.append(t)
    if not frames:
        # The columns dlcarbon writes and the (job, device) index, empty (since session 46, a
        # review: a frame without columns).
        empty = pd.DataFrame({"job": pd.Series(dtype=object), "device": pd.Series(dtype="int64"),
                              **{c: pd.Series(dtype="float64") for c in STAGE_COLUMNS},
                              "busiest": pd.Series(dtype=bool), "slot_share": pd.Series(dtype="float64")})
        return empty.set_index(["job", "device"])
    return pd.concat(frames, ignore_index=True).set_index(["job", "device"])


def job_overheads(run: RunOrPath) -> pd.DataFrame:
    """Each first-principles job's wall time by item (/training/<job>/overheads): one row per job
    and item (`training`, `batch ramp-up`, `checkpointing`, `evaluation`, `lost work`, `restarts`,
    `downtime`, `repeated runs`), indexed by (job, item), with `time_s`, `it_energy_J` and `time_share`, the
    item's share of the job's wall time. Empty when no job was costed from first principles
    (docs/output-format.md)."""
    frames = []
    for job, t in _job_tables(run, "overheads", ["item", "time", "it_energy"]):
        df = pd.DataFrame({"job": job, "item": t["item"], "time_s": t["time"], "it_energy_J": t["it_energy"]})
        total = float(df["time_s"].sum())
        df["time_share"] = df["time_s"] / total if total > 0 else 0.0
        frames.append(df)
    if not frames:
        # The same columns and (job, item) index, empty (since session 45, a review: a frame
        # without columns, where code selecting `time_s` raised KeyError).
        empty = pd.DataFrame({"job": pd.Series(dtype=object), "item": pd.Series(dtype=object),
                              "time_s": pd.Series(dtype="float64"), "it_energy_J": pd.Series(dtype="float64"),
                              "time_share": pd.Series(dtype="float64")})
        return empty.set_index(["job", "item"])
    return pd.concat(frames, ignore_index=True).set_index(["job", "item"])


# How many (phase, kind) groups of each job the report prints before summing the rest.
REPORT_OP_GROUPS = 6

# The columns of /training/<job>/ops a breakdown can group by, and those it sums (docs/output-format.md).
OP_KEYS = ("op", "kind", "phase", "bound", "layer")
OP_SUMS = (("flops", "flops"), ("bytes", "bytes"), ("time", "time_s"), ("energy", "energy_J"))


def op_breakdown(run: RunOrPath, by: Union[str, Sequence[str]] = ("phase", "kind")) -> pd.DataFrame:
    """Where each first-principles job's kernel energy goes in a step, from its per-op table
    (/training/<job>/ops): each row's flops, bytes, time and energy times `per_step`, the times
    it runs a step on the average device (microbatches / pipeline devices for a forward or
    backward row, 1 for the update and the communication), summed by `by` (any of op, kind,
    phase, bound, layer; one may be given as a string), indexed by (job, *by), with `flops`,
    `bytes`, `time_s`, `energy_J` (a step, the average device) and `energy_share` and
    `time_share`, the group's share of the job's. The communication rows carry no energy and their
    time is what the step leaves exposed; the energy is the kernels' (device energy), not the
    step's static power (docs/output-format.md). A file written before `per_step` existed (before
    session 53) is read with 1 for every row: one microbatch's ops and the step's update. Within a
    job the groups are sorted by energy, largest first. Empty when no job was costed from first
    principles."""
    keys = [by] if isinstance(by, str) else list(by)
    unknown = [k for k in keys if k not in OP_KEYS]
    if not keys or unknown:
        raise ValueError(f"op_breakdown: by must name some of {', '.join(OP_KEYS)}; got {by!r}")
    frames = []
    for job, t in _job_tables(run, "ops", list(OP_KEYS) + [c for c, _ in OP_SUMS]):
        runs = t["per_step"] if "per_step" in t.columns else 1.0
        weighted = t[keys].copy()
        for column, name in OP_SUMS:
            weighted[name] = t[column] * runs
        sums = weighted.groupby(keys, sort=False)[[name for _, name in OP_SUMS]].sum()
        energy, time = float(weighted["energy_J"].sum()), float(weighted["time_s"].sum())
        sums["energy_share"] = sums["energy_J"] / energy if energy > 0 else 0.0
        sums["time_share"] = sums["time_s"] / time if time > 0 else 0.0
        sums = sums.sort_values("energy_J", ascending=False, kind="stable").reset_index()
        sums.insert(0, "job", job)
        frames.append(sums)
    if not frames:
        empty = pd.DataFrame({"job": pd.Series(dtype=object),
                              **{k: pd.Series(dtype="int64" if k == "layer" else object) for k in keys},
                              **{name: pd.Series(dtype="float64") for _, name in OP_SUMS},
                              "energy_share": pd.Series(dtype="float64"), "time_share": pd.Series(dtype="float64")})
        return empty.set_index(["job"] + keys)
    return pd.concat(frames, ignore_index=True).set_index(["job"] + keys)


def _table_text(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)"
    return df.to_string(index=False, float_format=format_number, na_rep="n/a")


def _is_calibration(run: Run) -> bool:
    """A file written by `dlcarbon calibrate`: calibration/ tables, no summary/ ones
    (docs/output-format.md, "Calibration files")."""
    return "summary/training" not in run.tables and any(t.split("/")[0] == "calibration" for t in run.tables)


def _calibration_report(run: Run) -> str:
    """The report of a calibration file: its attributes, the machine measured and each
    calibration table's rows (it has no jobs, totals or lifecycle)."""
    a = run.attrs
    lines = [
        f"dlcarbon calibration: {run.scenario_name}",
        f"file: {run.path}",
        f"dlcarbon {a.get('dlcarbon_version', '?')} (commit {a.get('git_sha', '?')}), created {a.get('created', '?')}",
        "(written by `dlcarbon calibrate`: no jobs, totals or lifecycle; /scenario/given holds the hardware entry)",
    ]
    if "calibration/machine" in run.tables:
        lines += ["", "Machine measured:", _table_text(run.table("calibration/machine"))]
    tables = [t for t in run.tables if t.split("/")[0] == "calibration"]
    rows = pd.DataFrame({"table": tables, "rows": [len(run.table(t)) for t in tables]})
    lines += ["", "Calibration tables (rows):", _table_text(rows)]
    if "calibration/kernels" in run.tables:
        kernels = run.table("calibration/kernels")
        if "role" in kernels.columns and len(kernels):
            roles = kernels["role"].value_counts(sort=False)
            lines.append("Kernels by role: " + ", ".join(f"{role} {n}" for role, n in roles.items()))
    return "\n".join(lines)


def format_report(run: RunOrPath) -> str:
    """The text `python3 -m dlcarbon_analysis.report` prints."""
    run = _as_run(run)
    a = run.attrs
    if "sweep/info" in run.tables:
        info_table = run.table("sweep/info")
        _require(run, "sweep/info", info_table, ["method", "points"])
        if info_table.empty:
            raise DlcarbonFormatError(run.path, "table /sweep/info has no row")
        info = info_table.iloc[0]
        points = sweep_points(run)
        ok = points[points.status == "ok"]
        lines = [
            f"dlcarbon sweep: {run.scenario_name} ({info['method']}, {len(points)} of {info['points']} points, "
            f"{len(points) - len(ok)} cannot run)",
            f"file: {run.path}",
            f"dlcarbon {a.get('dlcarbon_version', '?')} (commit {a.get('git_sha', '?')}), created {a.get('created', '?')}",
            "",
            "Points (energy in MWh, emissions in tCO2e):",
            _table_text(points.drop(columns=["reason"]).reset_index()),
        ]
        # A point that cannot run has n/a figures: say why, as for a single run's jobs.
        for point, row in points[points.status != "ok"].iterrows():
            lines.append(f"  point {point} cannot run: {row['reason']}")
        if len(ok):
            low, high = ok["co2e_location_tCO2e"].idxmin(), ok["co2e_location_tCO2e"].idxmax()
            lines += ["", f"Lowest CO2e (location): point {low}, {format_number(ok.loc[low, 'co2e_location_tCO2e'])} t; "
                          f"highest: point {high}, {format_number(ok.loc[high, 'co2e_location_tCO2e'])} t"]
        return "\n".join(lines)
    if _is_calibration(run):
        return _calibration_report(run)
    lines = [
        f"dlcarbon run: {run.scenario_name}",
        f"file: {run.path}",
        f"dlcarbon {a.get('dlcarbon_version', '?')} (commit {a.get('git_sha', '?')}), "
        f"created {a.get('created', '?')}, seed {a.get('seed', '?')}",
        "",
        "Training jobs (duration in days, energy in MWh, emissions in tCO2e):",
        _table_text(training_summary(run)),
    ]
    raw = run.table("summary/training")
    if "status" in raw.columns:
        # A job that cannot run (does not fit in memory, ...) has n/a figures: say why.
        for job, status in zip(raw["job"], raw["status"]):
            if status != "ok":
                lines.append(f"  {job} cannot run: {status}")
    steps = step_breakdown(run)
    if not steps.empty:
        lines += ["", "Where each first-principles step goes (share of the step; step in s):",
                  _table_text(steps.reset_index())]
    ops = op_breakdown(run)
    if not ops.empty:
        # The largest groups of each job that ran, the rest summed (since session 53).
        ran = set(raw["job"][raw["status"] == "ok"]) if "status" in raw.columns else set(raw["job"])
        shown = []
        for job, g in ops.groupby(level="job", sort=False):
            if job not in ran:
                continue
            g = g.reset_index()
            top, rest = g.head(REPORT_OP_GROUPS), g.iloc[REPORT_OP_GROUPS:]
            if not rest.empty:
                other = {"job": job, "phase": "(others)", "kind": f"{len(rest)} groups"}
                other.update({c: rest[c].sum() for c in ("flops", "bytes", "time_s", "energy_J", "energy_share", "time_share")})
                top = pd.concat([top, pd.DataFrame([other])], ignore_index=True)
            shown.append(top)
        if shown:
            lines += ["", "Where each first-principles job's kernel energy goes in a step (the average device, "
                          "J, by phase and kind, largest first):",
                      _table_text(pd.concat(shown, ignore_index=True)[
                          ["job", "phase", "kind", "energy_J", "energy_share", "time_s", "time_share", "flops", "bytes"]])]
    overheads = job_overheads(run)
    if not overheads.empty and (overheads.reset_index()["item"] != "training").any():
        lines += ["", "Each first-principles job's wall time by item (s, IT energy in J, share of the job's time):",
                  _table_text(overheads.reset_index())]
    if "summary/inference" in run.tables:
        lines += ["", "Inference jobs (energy per inference in J, with host share and PUE):",
                  _table_text(inference_summary(run))]
        raw = run.table("summary/inference")
        if "status" in raw.columns:
            for job, status in zip(raw["job"], raw["status"]):
                if status != "ok":
                    lines.append(f"  {job} cannot run: {status}")
    if "summary/totals" in run.tables:
        # /summary/totals: the training and inference jobs, one run each; not the lifecycle (since
        # session 44, a review: "Totals:" read "jobs 0, 0 MWh" above a lifecycle of 1.393 MWh).
        lifecycle = "lifecycle/totals" in run.tables
        lines += ["", "Totals of the training and inference jobs, one run each (energy in MWh, emissions in tCO2e"
                      + ("; the lifecycle's total is below):" if lifecycle else "):"),
                  _table_text(totals_summary(run))]
        if lifecycle:
            lines += ["", "Lifecycle total over the horizon, every deployment and training run (energy in MWh, "
                          "emissions in tCO2e, embodied included):",
                      _table_text(_lifecycle_total(run))]
    if "lifecycle/deployments" in run.tables:
        lines += ["", "Lifecycle: deployments over the horizon (energy in MWh, emissions in tCO2e, embodied included):",
                  _table_text(deployment_summary(run))]
        by_phase = lifecycle_series(run, by=("phase",)).sum() / 1000.0
        lines += ["", "Lifecycle: tCO2e (location-based) by phase, over the horizon:",
                  _table_text(by_phase.rename("tCO2e").reset_index())]
    return "\n".join(lines)


def plot_training(summary: pd.DataFrame, out: Union[str, "os.PathLike[str]"], title: str = "") -> None:
    """Saves a bar chart of facility energy (MWh) and CO2e (tCO2e, location- and, where given,
    market-based) per job, from training_summary(). Uses the Agg backend (no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    jobs = [str(j) for j in summary["job"]]
    x = np.arange(len(jobs))
    # 1.2 inches a job up to 60 inches (6,000 pixels at 100 dpi, inside matplotlib's 65,536):
    # past 48 jobs every k-th is labelled.
    fig = Figure(figsize=(min(60.0, max(7.0, 3.0 + 1.2 * len(jobs))), 4.5), layout="constrained")
    label_every = max(1, int(np.ceil(len(jobs) / 48.0)))
    FigureCanvasAgg(fig)
    ax_energy, ax_co2e = fig.subplots(1, 2)

    ax_energy.bar(x, summary["facility_energy_MWh"].to_numpy(dtype=float), 0.5, color="tab:orange")
    ax_energy.set_ylabel("facility energy (MWh)")
    ax_energy.set_title("Facility energy")

    location = summary["co2e_location_tCO2e"].to_numpy(dtype=float)
    market = summary["co2e_market_tCO2e"].to_numpy(dtype=float)
    if np.isfinite(market).any():
        width = 0.4
        ax_co2e.bar(x - width / 2, location, width, label="location-based", color="tab:gray")
        # A job without a market-based figure (NaN: not given) has no bar, not a zero one.
        given = np.isfinite(market)
        ax_co2e.bar(x[given] + width / 2, market[given], width, label="market-based", color="tab:green")
        ax_co2e.legend()
    else:
        ax_co2e.bar(x, location, 0.5, color="tab:gray", label="location-based")
    ax_co2e.set_ylabel("CO2e (tCO2e)")
    ax_co2e.set_title("Emissions")

    for ax in (ax_energy, ax_co2e):
        ax.set_xticks(x[::label_every])
        ax.set_xticklabels(jobs[::label_every], rotation=30, ha="right")
        ax.set_xlabel("training job" if label_every == 1 else f"training job (one in {label_every} labelled)")
        if not jobs:
            ax.text(0.5, 0.5, "no training jobs in this run", transform=ax.transAxes, ha="center", va="center")
    if title:
        fig.suptitle(title)
    fig.savefig(out, dpi=100)


def plot_lifecycle(run: RunOrPath, out: Union[str, "os.PathLike[str]"], title: str = "") -> None:
    """Saves a stacked area chart of location-based tCO2e per time-series bin by phase (training,
    inference, idle, embodied) from /lifecycle/timeseries. Uses the Agg backend (no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    raw = lifecycle_series(run, by=("phase",))
    series = raw / 1000.0
    phases = [p for p in ("training", "inference", "idle", "embodied") if p in series.columns]
    fig = Figure(figsize=(9.0, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    dated = isinstance(series.index, pd.DatetimeIndex)
    # Past pandas' timestamps (2262) the bins are unix seconds: drawn as calendar years (365.2425 days).
    year_s = 365.2425 * 86400.0
    as_x = (lambda t: t.tz_convert(None).to_pydatetime()) if dated else (lambda t: 1970.0 + float(t) / year_s)
    x = [as_x(t) for t in series.index]
    values = [list(series[p].to_numpy(dtype=float)) for p in phases]
    end = raw.attrs.get("horizon_end")
    if end is not None and len(x):
        # The last bin's end, so that the step plot gives the last bin its width.
        x.append(as_x(end))
        values = [v + [v[-1]] for v in values]
    if phases:
        ax.stackplot(x, *values, labels=phases, step="post")
        ax.legend(loc="upper left")
    else:
        # Nothing emitted in the horizon (a deployment wholly outside it, one that cannot run):
        # an empty chart over the horizon, said on it.
        if len(x):
            ax.plot(x, [0.0] * len(x), color="grey")
        ax.text(0.5, 0.5, "nothing emitted in the horizon", transform=ax.transAxes, ha="center", va="center")
    ax.set_ylabel("tCO2e per bin (location-based)")
    ax.set_xlabel("bin start (UTC)" if dated else "bin start (year, UTC)")
    if title:
        ax.set_title(title)
    fig.savefig(out, dpi=100)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m dlcarbon_analysis.report",
        description="Print the training footprint of a dlcarbon output file in MWh and tCO2e.",
    )
    parser.add_argument("file", help="a file written by `dlcarbon run` (or sweep, merge, calibrate)")
    parser.add_argument("--plot", metavar="OUT.png",
                        help="also save a chart: CO2e by phase over time for a lifecycle run, "
                             "else facility energy and CO2e per training job")
    args = parser.parse_args(argv)
    if args.plot is not None and not args.plot.strip():
        parser.error("--plot: name the image file to write (got an empty name)")  # exit 2
    if args.plot is not None and not os.path.splitext(args.plot)[1]:
        # matplotlib writes a name without an extension as a PNG with ".png" added: say that name
        # (since session 46, a review: "plot: chart" where chart.png was written).
        args.plot += ".png"

    try:
        run = open_run(args.file)
        print(format_report(run))
        summary = training_summary(run) if args.plot is not None and "summary/training" in run.tables else None
    except DlcarbonFormatError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    except (KeyError, IndexError) as e:
        # A table the file has but without a row or column the report reads: a damaged or edited
        # file, said as one (since session 41, a review: a traceback, exit 1).
        print(f"{parser.prog}: error: {args.file}: not a complete dlcarbon output file (missing {e})", file=sys.stderr)
        return 2

    if args.plot is not None:
        try:
            if "lifecycle/timeseries" in run.tables:
                plot_lifecycle(run, args.plot, title=run.scenario_name)
            elif summary is None and _is_calibration(run):
                raise ValueError("a calibration file has no chart here; load its tables with open_run()")
            elif summary is None:
                raise ValueError("a sweep file has no chart here; load it with sweep_points()")
            else:
                plot_training(summary, args.plot, title=run.scenario_name)
        except (OSError, ValueError) as e:
            print(f"{parser.prog}: error: cannot write the plot {args.plot}: {e}", file=sys.stderr)
            return 1
        print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
