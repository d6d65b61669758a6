"""dlcarbon_analysis.report: the summary frames and the command line."""

import math
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from dlcarbon_analysis import DlcarbonFormatError, open_run, totals_summary, training_summary
from dlcarbon_analysis.report import format_number, main

ANALYSIS_DIR = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_cli(*args, cwd):
    """`python -m dlcarbon_analysis.report ARGS` in a fresh interpreter (this one)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ANALYSIS_DIR), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "dlcarbon_analysis.report", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


# --- summary frames ------------------------------------------------------------------------

def test_training_summary_columns_and_units(run_file):
    df = training_summary(open_run(run_file))
    assert list(df.columns) == [
        "job", "model", "hardware", "datacenter", "region", "accelerators", "duration_days",
        "it_energy_MWh", "pue", "facility_energy_MWh", "co2e_location_tCO2e", "co2e_market_tCO2e",
    ]
    units = df.attrs["units"]
    assert units["facility_energy_MWh"] == "MWh"
    assert units["co2e_location_tCO2e"] == "tCO2e"
    assert units["duration_days"] == "days"
    assert units["accelerators"] == "1"


def test_training_summary_values(run_file):
    df = training_summary(run_file)  # a path works too
    assert list(df["job"]) == ["gpt3", "bert-ft", "sweep-τ"]
    # 4.6332e12 J / 3.6e9 = 1,287 MWh; 1.8e11 / 3.6e9 = 50 MWh; 4.32e7 / 3.6e9 = 0.012 MWh
    np.testing.assert_allclose(df["facility_energy_MWh"], [1287.0, 50.0, 0.012], rtol=1e-12)
    # 4.212e12 / 3.6e9 = 1,170 MWh; 1.5e11 / 3.6e9 = 41.667 MWh
    np.testing.assert_allclose(df["it_energy_MWh"], [1170.0, 41.6666667, 0.012], rtol=1e-8)
    # 552,000 kg / 1,000 = 552 t; 20,000 kg = 20 t; 4.8 kg = 0.0048 t
    np.testing.assert_allclose(df["co2e_location_tCO2e"], [552.0, 20.0, 0.0048], rtol=1e-12)
    # market: none given for gpt3 and sweep-τ; 1,000 kg = 1 t for bert-ft
    assert math.isnan(df["co2e_market_tCO2e"].iloc[0])
    assert df["co2e_market_tCO2e"].iloc[1] == pytest.approx(1.0)
    assert math.isnan(df["co2e_market_tCO2e"].iloc[2])
    # 1,278,720 s / 86,400 = 14.8 days; 172,800 s = 2 days; 36,000 s = 0.41667 days
    np.testing.assert_allclose(df["duration_days"], [14.8, 2.0, 0.4166667], rtol=1e-6)
    assert list(df["accelerators"]) == [10000, 64, 4]


def test_totals_summary(run_file):
    df = totals_summary(run_file)
    assert len(df) == 1
    # 4.8132432e12 J / 3.6e9 = 1,337.012 MWh; 572,004.8 kg = 572.0048 t
    assert df["facility_energy_MWh"].iloc[0] == pytest.approx(1337.012, rel=1e-12)
    assert df["co2e_location_tCO2e"].iloc[0] == pytest.approx(572.0048, rel=1e-12)
    assert math.isnan(df["co2e_market_tCO2e"].iloc[0])
    assert df["jobs"].iloc[0] == 3


def test_summary_follows_the_files_units(write_run, training_columns):
    # A file that (hypothetically) stored energy in kWh is still shown right in MWh.
    values, _ = training_columns["facility_energy"]
    training_columns["facility_energy"] = (values / 3.6e6, "kWh")  # 1,287,000 kWh
    df = training_summary(write_run(training=training_columns))
    assert df["facility_energy_MWh"].iloc[0] == pytest.approx(1287.0)


def test_summary_rejects_wrong_units(write_run, training_columns):
    from dlcarbon_analysis import DlcarbonFormatError

    values, _ = training_columns["co2e_location"]
    training_columns["co2e_location"] = (values, "J")  # energy where CO2e belongs
    path = write_run(training=training_columns)
    with pytest.raises(DlcarbonFormatError, match="co2e_location.*cannot convert 'J'"):
        training_summary(path)


def test_format_number():
    assert format_number(1287.0) == "1287"
    assert format_number(552.0) == "552.0"
    assert format_number(1337.012) == "1337"
    assert format_number(0.012) == "0.01200"
    assert format_number(float("nan")) == "n/a"
    assert format_number(0.0) == "0"
    assert format_number(3.14e23) == "3.14e+23"
    assert format_number(-20.0) == "-20.00"


# --- command line --------------------------------------------------------------------------

def test_cli_prints_summary(run_file, tmp_path):
    proc = run_cli(run_file, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "dlcarbon run: test-run" in out
    assert "dlcarbon 0.1.0 (commit abc123def456)" in out
    lines = out.splitlines()
    gpt3 = next(line for line in lines if line.lstrip().startswith("gpt3 "))
    bert = next(line for line in lines if line.lstrip().startswith("bert-ft "))
    sweep = next(line for line in lines if line.lstrip().startswith("sweep-τ "))
    # facility 1,287 MWh, IT 1,170 MWh, 552.0 tCO2e, 14.80 days, no market figure
    for text in ["1287", "1170", "552.0", "14.80", "n/a", "10000", "1.100"]:
        assert text in gpt3.split(), (text, gpt3)
    # 50 MWh, 20 t location, 1 t market
    for text in ["50.00", "20.00", "1.000", "rechenzentrum-zürich"]:
        assert text in bert.split(), (text, bert)
    # 0.012 MWh, 0.0048 t
    for text in ["0.01200", "0.004800"]:
        assert text in sweep.split(), (text, sweep)
    # totals: IT 1,170 + 41.667 + 0.012 = 1,211.679 MWh -> "1212";
    # facility 1,287 + 50 + 0.012 = 1,337.012 MWh -> "1337"; 572.0048 t -> "572.0"
    heading = next(i for i, line in enumerate(lines) if line.startswith("Totals"))
    assert lines[heading] == "Totals of the training and inference jobs, one run each (energy in MWh, emissions in tCO2e):"
    totals = lines[heading + 2].split()
    assert totals == ["3", "1212", "1337", "572.0", "n/a"]
    assert "Lifecycle total" not in out  # no lifecycle in this file
    assert proc.stderr == ""


def test_cli_writes_png(run_file, tmp_path):
    png = tmp_path / "plots" / "jobs.png"
    png.parent.mkdir()
    proc = run_cli(run_file, "--plot", png, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert png.is_file()
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert png.stat().st_size > 5000
    assert f"plot: {png}" in proc.stdout
    assert "1287" in proc.stdout


def test_cli_bad_file_exits_2(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    proc = run_cli(bad, "--plot", tmp_path / "x.png", cwd=tmp_path)
    assert proc.returncode == 2
    assert "not an HDF5 file" in proc.stderr
    assert str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_cli_missing_file_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing.h5")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "missing.h5" in err


def test_cli_wrong_version_exits_2(write_run, capsys):
    path = write_run(attrs={"format_version": np.int64(7)})
    assert main([str(path)]) == 2
    assert "format_version 7 is not supported" in capsys.readouterr().err


def test_cli_unwritable_plot_exits_1(run_file, tmp_path, capsys):
    assert main([str(run_file), "--plot", str(tmp_path / "no-such-dir" / "x.png")]) == 1
    assert "cannot write the plot" in capsys.readouterr().err


def test_cli_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_cli_empty_plot_name_exits_2(run_file, capsys):
    # `--plot ''` had exited 0 with no plot and no word (since session 41, a review).
    with pytest.raises(SystemExit) as info:
        main([str(run_file), "--plot", ""])
    assert info.value.code == 2
    assert "--plot: name the image file" in capsys.readouterr().err


def test_plot_in_process_with_no_market_figures(write_run, training_columns, tmp_path):
    # Only location-based bars when no job has a market figure; one job is enough.
    for column, (values, units) in list(training_columns.items()):
        training_columns[column] = (values[:1], units)
    path = write_run(training=training_columns)
    png = tmp_path / "one.png"
    assert main([str(path), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG_SIGNATURE


def test_report_with_no_training_jobs(write_run, training_columns, tmp_path, capsys):
    empty = {c: ([] if u == "" else np.array([], dtype=float), u) for c, (_, u) in training_columns.items()}
    path = write_run(training=empty)
    png = tmp_path / "empty.png"
    assert main([str(path), "--plot", str(png)]) == 0
    assert "(none)" in capsys.readouterr().out
    assert png.is_file()


def test_plot_with_many_jobs_and_missing_market_figures(write_run, training_columns, tmp_path):
    # 600 jobs: the chart was 3 + 1.2 x 600 inches wide, 72,300 pixels, past matplotlib's limit
    # (exit 1 before session 35); now at most 60 inches. Jobs without a market figure (NaN) get no
    # market bar, not a zero one.
    import matplotlib

    from dlcarbon_analysis.report import plot_training

    n = 600
    cols = {}
    for column, (values, units) in training_columns.items():
        if isinstance(values, list):
            cols[column] = ([f"{values[i % 3]}-{i}" for i in range(n)], units)
        else:
            cols[column] = (np.resize(np.asarray(values), n), units)
    path = write_run(training=cols)
    png = tmp_path / "many.png"
    assert main([str(path), "--plot", str(png)]) == 0
    from PIL import Image  # matplotlib's own dependency

    with Image.open(png) as im:
        assert im.size[0] <= 6000
    drawn = []
    original = matplotlib.axes.Axes.bar

    def spy(self, x, height, *args, **kwargs):
        drawn.append((kwargs.get("label"), np.asarray(height, dtype=float)))
        return original(self, x, height, *args, **kwargs)

    matplotlib.axes.Axes.bar = spy
    try:
        plot_training(training_summary(write_run("three.h5")), tmp_path / "three.png")
    finally:
        matplotlib.axes.Axes.bar = original
    market = [h for label, h in drawn if label == "market-based"]
    assert len(market) == 1
    assert list(market[0]) == pytest.approx([1.0])  # bert-ft's 1 t only; gpt3 and sweep-τ have none


def test_damaged_file_exits_2_naming_it(run_file, tmp_path, capsys):
    # A file whose object headers are overwritten: HDF5 raises KeyError, RuntimeError or OSError
    # deep inside h5py, which reached the user as a traceback with exit 1 before session 35.
    data = bytearray(run_file.read_bytes())
    damaged = tmp_path / "damaged.h5"
    failures = 0
    # Overwrite 32 bytes at a series of places past the superblock; each damaged copy must either
    # read or fail with DlcarbonFormatError (exit 2), never with another exception.
    for at in range(512, len(data) - 32, max(1, (len(data) - 544) // 40)):
        copy = bytearray(data)
        copy[at:at + 32] = bytes(b ^ 0x5A for b in copy[at:at + 32])
        damaged.write_bytes(bytes(copy))
        code = main([str(damaged)])
        err = capsys.readouterr().err
        assert code in (0, 2)
        if code == 2:
            failures += 1
            assert str(damaged) in err
    assert failures > 0


def test_step_breakdown_reads_each_jobs_step_table(run_file, capsys):
    # One first-principles job whose 2 s step is 1.5 s of compute, 0.3 s of communication and a
    # 0.2 s pipeline bubble: shares 0.75, 0.15, 0.10.
    import h5py

    from dlcarbon_analysis import step_breakdown

    text = h5py.string_dtype("utf-8")
    with h5py.File(run_file, "a") as f:
        g = f.create_group("training/gpt3/step")
        g.create_dataset("component", data=["compute", "tensor communication", "pipeline bubble"], dtype=text)
        g.create_dataset("time", data=np.array([1.5, 0.3, 0.2]))
        g.create_dataset("share", data=np.array([0.75, 0.15, 0.10]))
        for name, units in (("component", ""), ("time", "s"), ("share", "1")):
            g[name].attrs.create("units", units, dtype=text)
        g.attrs.create("columns", "component,time,share", dtype=text)
    df = step_breakdown(run_file)
    assert list(df.index) == ["gpt3"]
    assert df.loc["gpt3", "compute"] == pytest.approx(0.75)
    assert df.loc["gpt3", "pipeline bubble"] == pytest.approx(0.10)
    assert df.loc["gpt3", "step_time_s"] == pytest.approx(2.0)
    assert main([str(run_file)]) == 0
    out = capsys.readouterr().out
    assert "Where each first-principles step goes" in out
    assert "tensor communication" in out


def test_per_job_tables_follow_the_jobs_order(run_file):
    # summary/training lists gpt3, bert-ft, sweep-τ; by name bert-ft would come first (the order
    # before session 35).
    import h5py

    from dlcarbon_analysis import step_breakdown

    text = h5py.string_dtype("utf-8")
    with h5py.File(run_file, "a") as f:
        for job in ("sweep-τ", "bert-ft", "gpt3"):
            g = f.create_group(f"training/{job}/step")
            g.create_dataset("component", data=["compute"], dtype=text)
            g.create_dataset("time", data=np.array([1.0]))
            g.create_dataset("share", data=np.array([1.0]))
            for name, units in (("component", ""), ("time", "s"), ("share", "1")):
                g[name].attrs.create("units", units, dtype=text)
            g.attrs.create("columns", "component,time,share", dtype=text)
    assert list(step_breakdown(run_file).index) == ["gpt3", "bert-ft", "sweep-τ"]


def test_step_breakdown_is_empty_without_first_principles_jobs(run_file):
    from dlcarbon_analysis import step_breakdown

    df = step_breakdown(run_file)
    assert df.empty
    # Its step column and job index (since session 46, a review: no columns, KeyError).
    assert df["step_time_s"].dtype == "float64" and df["step_time_s"].sum() == 0
    assert df.index.name == "job"


def test_stage_loads_reads_each_jobs_pipeline_devices(run_file):
    # Two devices of one job: the first's slot 0.9 s, the second's 1.2 s (the busiest): slot shares
    # 0.75 and 1.
    import h5py

    from dlcarbon_analysis import stage_loads

    text = h5py.string_dtype("utf-8")
    columns = (("device", np.array([0, 1], dtype=np.int64), ""), ("layers", np.array([3.0, 1.0]), "1"),
               ("forward", np.array([0.3, 0.2]), "s"), ("backward", np.array([0.6, 0.5]), "s"),
               ("tensor_communication", np.array([0.0, 0.0]), "s"), ("expert_all_to_all", np.array([0.0, 0.5]), "s"),
               ("slot", np.array([0.9, 1.2]), "s"), ("activations", np.array([3e9, 1e9]), "B"),
               ("busiest", np.array([0, 1], dtype=np.int64), ""))
    with h5py.File(run_file, "a") as f:
        g = f.create_group("training/gpt3/stages")
        for name, values, units in columns:
            g.create_dataset(name, data=values)
            g[name].attrs.create("units", units, dtype=text)
        g.attrs.create("columns", ",".join(c[0] for c in columns), dtype=text)
    df = stage_loads(run_file)
    assert list(df.index) == [("gpt3", 0), ("gpt3", 1)]
    assert df.loc[("gpt3", 1), "busiest"]
    assert not df.loc[("gpt3", 0), "busiest"]
    assert df.loc[("gpt3", 0), "slot_share"] == pytest.approx(0.75)
    assert df.loc[("gpt3", 1), "slot_share"] == pytest.approx(1.0)
    assert df.loc[("gpt3", 0), "layers"] == pytest.approx(3.0)


def _write_ops(run_file):
    """A first-principles job's per-op table: a GEMM forward (3 J) and backward (6 J) and a norm
    (0.5 J) in block 0, run twice a step (`per_step` 2: two microbatches, no pipeline), the update
    (0.5 J) and the step's exposed all-reduce (no energy) at -1, once: 6 + 12 + 1 + 0.5 = 19.5 J a
    step, so the shares are 12/19.5, 6/19.5, 1/19.5, 0.5/19.5 and 0."""
    text = h5py.string_dtype("utf-8")
    columns = (("op", ["qkv", "qkv", "norm", "optimizer.adam", "data.allreduce"], ""),
               ("kind", ["matmul", "matmul", "elementwise", "elementwise", "communication"], ""),
               ("phase", ["fwd", "bwd", "fwd", "opt", "comm"], ""),
               ("flops", np.array([2e9, 4e9, 1e6, 2e6, 0.0]), "FLOP"),
               ("bytes", np.array([1e8, 2e8, 5e7, 4e7, 0.0]), "B"),
               ("time", np.array([0.01, 0.02, 0.004, 0.004, 0.012]), "s"),
               ("energy", np.array([3.0, 6.0, 0.5, 0.5, 0.0]), "J"),
               ("bound", ["compute", "compute", "memory", "memory", "communication"], ""),
               ("layer", np.array([0, 0, 0, -1, -1], dtype=np.int64), "1"),
               ("per_step", np.array([2.0, 2.0, 2.0, 1.0, 1.0]), "1"))
    with h5py.File(run_file, "a") as f:
        g = f.create_group("training/gpt3/ops")
        for name, values, units in columns:
            if isinstance(values, list):
                g.create_dataset(name, data=values, dtype=text)
            else:
                g.create_dataset(name, data=values)
            g[name].attrs.create("units", units, dtype=text)
        g.attrs.create("columns", ",".join(c[0] for c in columns), dtype=text)


def test_op_breakdown_sums_each_jobs_ops_by_phase_and_kind(run_file, capsys):
    from dlcarbon_analysis import op_breakdown

    _write_ops(run_file)
    df = op_breakdown(run_file)
    assert list(df.index.names) == ["job", "phase", "kind"]
    # Largest energy first; the two GEMM rows are two groups (fwd, bwd), the norm and the update two more.
    assert list(df.index)[:2] == [("gpt3", "bwd", "matmul"), ("gpt3", "fwd", "matmul")]
    assert df.loc[("gpt3", "bwd", "matmul"), "energy_share"] == pytest.approx(12 / 19.5)
    assert df.loc[("gpt3", "fwd", "elementwise"), "energy_J"] == pytest.approx(1.0)
    assert df.loc[("gpt3", "fwd", "matmul"), "flops"] == pytest.approx(4e9)
    assert df.loc[("gpt3", "opt", "elementwise"), "flops"] == pytest.approx(2e6)
    assert df.loc[("gpt3", "opt", "elementwise"), "energy_share"] == pytest.approx(0.5 / 19.5)
    assert df.loc[("gpt3", "comm", "communication"), "energy_share"] == 0
    # Time shares over a step's 0.084 s (0.02 + 0.04 + 0.008 + 0.004 + 0.012): the exposed
    # all-reduce's 0.012 s is a seventh of it.
    assert df.loc[("gpt3", "comm", "communication"), "time_share"] == pytest.approx(0.012 / 0.084)
    assert df["energy_share"].sum() == pytest.approx(1.0)
    # By block: block 0 holds 19 of the 19.5 J; by one key given as a string.
    layers = op_breakdown(run_file, by="layer")
    assert layers.loc[("gpt3", 0), "energy_J"] == pytest.approx(19.0)
    assert layers.loc[("gpt3", -1), "bytes"] == pytest.approx(4e7)
    by_op = op_breakdown(run_file, by=["op"])
    assert by_op.loc[("gpt3", "qkv"), "time_s"] == pytest.approx(0.06)
    with pytest.raises(ValueError, match="by must name"):
        op_breakdown(run_file, by="flops")
    with pytest.raises(ValueError, match="by must name"):
        op_breakdown(run_file, by=[])
    assert main([str(run_file)]) == 0
    out = capsys.readouterr().out
    assert "Where each first-principles job's kernel energy goes in a step" in out
    assert "(others)" not in out  # 5 groups: all shown


def test_report_sums_a_jobs_smaller_op_groups(run_file, capsys):
    # Eight (phase, kind) groups of 8, 7, ..., 1 J: the report prints the six largest and sums the
    # last two (2 + 1 = 3 J, 3/36 of the energy) as "(others)". A table without `per_step` (a file
    # written before session 53) counts every row once.
    text = h5py.string_dtype("utf-8")
    kinds = ["matmul", "elementwise", "softmax", "norm", "attention", "conv2d", "pool", "embedding"]
    columns = (("op", [f"op{i}" for i in range(8)], ""), ("kind", kinds, ""), ("phase", ["fwd"] * 8, ""),
               ("flops", np.ones(8), "FLOP"), ("bytes", np.ones(8), "B"), ("time", np.full(8, 0.5), "s"),
               ("energy", np.arange(8.0, 0.0, -1.0), "J"), ("bound", ["compute"] * 8, ""),
               ("layer", np.zeros(8, dtype=np.int64), "1"))
    with h5py.File(run_file, "a") as f:
        g = f.create_group("training/gpt3/ops")
        for name, values, units in columns:
            g.create_dataset(name, data=values, dtype=text if isinstance(values, list) else None)
            g[name].attrs.create("units", units, dtype=text)
        g.attrs.create("columns", ",".join(c[0] for c in columns), dtype=text)
    assert main([str(run_file)]) == 0
    out = capsys.readouterr().out
    section = out.split("Where each first-principles job's kernel energy goes in a step")[1].split("\n\n")[0]
    assert "conv2d" in section and "pool" not in section and "embedding" not in section
    others = [line for line in section.splitlines() if "(others)" in line]
    assert len(others) == 1 and "2 groups" in others[0]
    assert others[0].split()[4] == "3.000"  # energy_J
    assert others[0].split()[5] == format_number(3.0 / 36.0)


def test_op_breakdown_is_empty_without_first_principles_jobs(run_file):
    from dlcarbon_analysis import op_breakdown

    df = op_breakdown(run_file)
    assert df.empty
    assert list(df.index.names) == ["job", "phase", "kind"]
    for column in ("flops", "bytes", "time_s", "energy_J", "energy_share", "time_share"):
        assert df[column].dtype == "float64"
    assert list(op_breakdown(run_file, by="layer").index.names) == ["job", "layer"]


def test_stage_loads_is_empty_without_first_principles_jobs(run_file):
    from dlcarbon_analysis import stage_loads

    df = stage_loads(run_file)
    assert df.empty
    # The columns dlcarbon writes and the (job, device) index (since session 46, a review: none).
    assert list(df.index.names) == ["job", "device"]
    for column in ("layers", "forward", "backward", "slot", "activations", "tail", "busiest", "slot_share"):
        assert column in df.columns
    assert df["slot"].dtype == "float64"


def test_per_job_tables_without_a_column_raise_the_format_error(run_file):
    # A /training/<job>/stages table without `slot`: DlcarbonFormatError naming the table and the
    # column, as the summaries do (since session 46, a review: a bare KeyError).
    import h5py

    from dlcarbon_analysis import stage_loads, step_breakdown

    text = h5py.string_dtype("utf-8")
    with h5py.File(run_file, "a") as f:
        g = f.create_group("training/gpt3/stages")
        for name, values, units in (("device", np.array([0], dtype=np.int64), ""), ("busiest", np.array([1]), "")):
            g.create_dataset(name, data=values)
            g[name].attrs.create("units", units, dtype=text)
        g.attrs.create("columns", "device,busiest", dtype=text)
        s = f.create_group("training/gpt3/step")
        s.create_dataset("component", data=["compute"], dtype=text)
        s["component"].attrs.create("units", "", dtype=text)
        s.attrs.create("columns", "component", dtype=text)
    with pytest.raises(DlcarbonFormatError, match=r"training/gpt3/stages lacks column\(s\) slot"):
        stage_loads(run_file)
    with pytest.raises(DlcarbonFormatError, match=r"training/gpt3/step lacks column\(s\) share, time"):
        step_breakdown(run_file)


def test_a_numeric_column_stored_as_text_is_a_format_error(run_file, capsys):
    # /summary/training `duration` as text: exit 2 with the column named, not a pandas traceback
    # (since session 46, a review: ValueError, exit 1).
    import h5py

    with h5py.File(run_file, "a") as f:
        g = f["summary/training"]
        del g["duration"]
        g.create_dataset("duration", data=["x", "y", "z"], dtype=h5py.string_dtype("utf-8"))
        g["duration"].attrs.create("units", "s", dtype=h5py.string_dtype("utf-8"))
    assert main([str(run_file)]) == 2
    assert "column 'duration' is not numeric" in capsys.readouterr().err


def test_plot_name_without_an_extension_is_said_as_written(run_file, tmp_path, capsys):
    # matplotlib adds ".png": the report says the file it wrote (since session 46, a review).
    out = tmp_path / "chart"
    assert main([str(run_file), "--plot", str(out)]) == 0
    assert f"plot: {out}.png" in capsys.readouterr().out
    assert (tmp_path / "chart.png").is_file()


def test_job_overheads_reads_each_jobs_items_with_their_share(run_file):
    # Training 90 s and a batch ramp-up of 10 s: shares 0.9 and 0.1.
    import h5py

    from dlcarbon_analysis import job_overheads

    text = h5py.string_dtype("utf-8")
    with h5py.File(run_file, "a") as f:
        g = f.create_group("training/gpt3/overheads")
        g.create_dataset("item", data=np.array(["training", "batch ramp-up"], dtype=object), dtype=text)
        g["item"].attrs.create("units", "", dtype=text)
        g.create_dataset("time", data=np.array([90.0, 10.0]))
        g["time"].attrs.create("units", "s", dtype=text)
        g.create_dataset("it_energy", data=np.array([9e6, 5e5]))
        g["it_energy"].attrs.create("units", "J", dtype=text)
        g.attrs.create("columns", "item,time,it_energy", dtype=text)
    df = job_overheads(run_file)
    assert list(df.index) == [("gpt3", "training"), ("gpt3", "batch ramp-up")]
    from dlcarbon_analysis.report import format_report

    assert "wall time by item" in format_report(run_file)
    assert df.loc[("gpt3", "batch ramp-up"), "time_share"] == pytest.approx(0.1)
    assert df.loc[("gpt3", "training"), "it_energy_J"] == pytest.approx(9e6)


def test_job_overheads_is_empty_without_first_principles_jobs(run_file):
    from dlcarbon_analysis import job_overheads

    df = job_overheads(run_file)
    assert df.empty
    # Its columns and index as a first-principles file's (selecting a column works).
    assert list(df.columns) == ["time_s", "it_energy_J", "time_share"]
    assert list(df.index.names) == ["job", "item"]
    assert df["time_s"].dtype == "float64"
    assert df["time_s"].sum() == 0


def test_report_says_why_an_inference_job_cannot_run(run_file, capsys):
    # Two inference jobs, the second too large for its accelerator: NaN figures and its reason
    # (docs/output-format.md, /summary/inference `status`).
    from collections import OrderedDict

    from conftest import write_table
    import h5py

    nan = float("nan")
    columns = OrderedDict([
        ("job", (["small", "huge"], "")), ("model", (["m", "big"], "")), ("hardware", (["gpu", "gpu"], "")),
        ("datacenter", (["dc", "dc"], "")), ("region", (["r", "r"], "")), ("layout", (["nchw", "nchw"], "")),
        ("input_layout", (["nchw", "nchw"], "")), ("batch", (np.array([1, 1]), "1")),
        ("inferences", (np.array([1e6, 1e6]), "1")),
        ("status", (["ok", "does not fit: needs 38.9 GB per device"], "")),
        ("memory_per_accelerator", (np.array([1e9, 38.9e9]), "B")),
        ("batch_time", (np.array([0.01, nan]), "s")),
        ("facility_energy_per_inference", (np.array([2.0, nan]), "J")),
        ("facility_energy", (np.array([2e6, nan]), "J")),
        ("co2e_location", (np.array([0.5, nan]), "kgCO2e")),
    ])
    with h5py.File(run_file, "a") as f:
        write_table(f, "summary/inference", columns)
    assert main([str(run_file)]) == 0
    out = capsys.readouterr().out
    assert "huge cannot run: does not fit: needs 38.9 GB per device" in out
    assert "small cannot run" not in out


def test_report_prints_the_lifecycle_total_beside_the_jobs_totals(run_file, capsys):
    # /summary/totals holds the jobs (one run each), not the lifecycle: the heading says so, and a
    # file with /lifecycle/totals gets the lifecycle's total summed from it (since session 44, a
    # review: "Totals:" read "jobs 0, 0 MWh" for a deployments-only run of 1.393 MWh).
    from collections import OrderedDict

    from conftest import write_table

    # Two rows: 3.6e9 J (1 MWh) + 1.8e9 J (0.5 MWh); 400 + 200 kg location; 100 + 200 kg market.
    columns = OrderedDict([
        ("entity", (["cctv", "cctv"], "")), ("entity_kind", (["deployment", "deployment"], "")),
        ("phase", (["inference", "embodied"], "")), ("site", (["de", "de"], "")), ("region", (["de", "de"], "")),
        ("hardware", (["gpu", "gpu"], "")), ("model", (["m", "m"], "")),
        ("energy", (np.array([3.6e9, 1.8e9]), "J")), ("co2e_location", (np.array([400.0, 200.0]), "kgCO2e")),
        ("co2e_market", (np.array([100.0, 200.0]), "kgCO2e")), ("requests", (np.array([1e6, 0.0]), "1")),
    ])
    with h5py.File(run_file, "a") as f:
        write_table(f, "lifecycle/totals", columns)
    assert main([str(run_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert ("Totals of the training and inference jobs, one run each (energy in MWh, emissions in tCO2e; "
            "the lifecycle's total is below):") in lines
    heading = next(i for i, line in enumerate(lines) if line.startswith("Lifecycle total over the horizon"))
    assert lines[heading + 1].split() == ["energy_MWh", "co2e_location_tCO2e", "co2e_market_tCO2e"]
    assert lines[heading + 2].split() == ["1.500", "0.6000", "0.3000"]
    # A deployment that cannot run (n/a in /lifecycle/deployments, no rows in /lifecycle/totals):
    # the total is n/a, as /summary/totals and a sweep point's (since session 46, a review: the
    # others' sum).
    nan = float("nan")
    deployments = OrderedDict([
        ("deployment", (["cctv", "huge"], "")), ("model", (["m", "big"], "")),
        ("requests", (np.array([1e6, nan]), "1")), ("useful_requests", (np.array([1e6, nan]), "1")),
        ("unserved_requests", (np.array([0.0, nan]), "1")), ("energy", (np.array([5.4e9, nan]), "J")),
        ("co2e_location", (np.array([600.0, nan]), "kgCO2e")), ("co2e_market", (np.array([300.0, nan]), "kgCO2e")),
        ("co2e_per_inference", (np.array([6e-4, nan]), "kgCO2e")), ("co2e_per_useful_inference", (np.array([6e-4, nan]), "kgCO2e")),
        ("peak_replicas", (np.array([1.0, nan]), "1")), ("mean_utilisation", (np.array([0.5, nan]), "1")),
    ])
    with h5py.File(run_file, "a") as f:
        write_table(f, "lifecycle/deployments", deployments)
    from dlcarbon_analysis.report import _lifecycle_total

    total = _lifecycle_total(open_run(run_file))
    assert list(total.columns) == ["energy_MWh", "co2e_location_tCO2e", "co2e_market_tCO2e"]
    assert total.isna().all(axis=None)
    # Its energy as text: the format error, not a pandas traceback (a review of session 46).
    with h5py.File(run_file, "a") as f:
        g = f["lifecycle/deployments"]
        del g["energy"]
        g.create_dataset("energy", data=["x", "y"], dtype=h5py.string_dtype("utf-8"))
        g["energy"].attrs.create("units", "J", dtype=h5py.string_dtype("utf-8"))
    with pytest.raises(DlcarbonFormatError, match="lifecycle/deployments, column 'energy' is not numeric"):
        _lifecycle_total(open_run(run_file))


def test_inference_summary_without_inference_jobs_has_the_files_dtypes(run_file):
    # The binary writes /summary/inference `batch` as int64 and `inferences` as float64 (since
    # session 44, a review: the empty frame's `batch` was float64).
    from dlcarbon_analysis import inference_summary

    inf = inference_summary(run_file)
    assert len(inf) == 0
    assert inf["batch"].dtype == np.int64
    assert inf["inferences"].dtype == np.float64
    assert inf["job"].dtype == object and inf["facility_energy_kWh"].dtype == np.float64


def test_inference_summary_of_a_file_that_is_not_a_run_raises(run_file):
    # A file without /summary/training (a sweep's, a calibration's) is not a run: the same error as
    # training_summary() gives, not an empty frame (since session 46, a review).
    import h5py

    from dlcarbon_analysis import inference_summary, training_summary

    with h5py.File(run_file, "a") as f:
        del f["summary/training"]
    with pytest.raises(DlcarbonFormatError, match="summary/training"):
        training_summary(run_file)
    with pytest.raises(DlcarbonFormatError, match="summary/inference"):
        inference_summary(run_file)


def _calibration_file():
    source = Path(os.environ.get("DLCARBON_SOURCE_DIR") or ANALYSIS_DIR.parent)
    path = source / "data" / "hardware" / "measured" / "cpu-amd-epyc-2t.h5"
    if not path.is_file():
        pytest.skip(f"{path} is missing (DLCARBON_SOURCE_DIR={source})")
    return path


def test_report_of_a_calibration_file(capsys, tmp_path):
    # A file of `dlcarbon calibrate` (calibration/ tables, no summary/ ones): its attributes and
    # tables, exit 0 (since session 44, a review: exit 2, "no table 'summary/training'").
    path = _calibration_file()
    run = open_run(path)
    assert main([str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"dlcarbon calibration: {run.attrs['scenario_name']}"
    assert f"created {run.attrs['created']}" in out
    for table in ("calibration/kernels", "calibration/machine", "calibration/samples"):
        row = next(line for line in lines if line.split()[:1] == [table])
        assert row.split() == [table, str(len(run.table(table)))]
    # Each role once with its count (calibrate and check, docs/calibration.md), adding up to the kernels.
    roles = run.table("calibration/kernels")["role"].value_counts()
    said = next(line for line in lines if line.startswith("Kernels by role: "))
    assert sorted(said[len("Kernels by role: "):].split(", ")) == sorted(f"{r} {n}" for r, n in roles.items())
    assert "Training jobs" not in out and "Totals" not in out
    # No chart for it: exit 1 after the report, saying why.
    assert main([str(path), "--plot", str(tmp_path / "c.png")]) == 1
    assert "a calibration file has no chart here" in capsys.readouterr().err
