"""Lifecycle runs end to end with the real binary (skipped when DLCARBON_BIN is not set):
conservation in the file, bit-identical datasets for 1 and 2 threads, and the CCTV scenario's
carbon per useful inference."""
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from dlcarbon_analysis import deployment_summary, lifecycle_series, open_run
from dlcarbon_analysis.report import format_report, main


def _run(tmp_path, scenario, name, *extra):
    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    source = Path(os.environ.get("DLCARBON_SOURCE_DIR") or Path(__file__).resolve().parents[2])
    out = tmp_path / name
    proc = subprocess.run([binary, "run", str(source / "scenarios" / "lifecycle" / scenario), "-o", str(out), "--quiet", *extra],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def test_assistant_llm_conserves_and_is_deterministic(tmp_path):
    one = _run(tmp_path, "assistant-llm.yaml", "one.h5", "--threads", "1")
    two = _run(tmp_path, "assistant-llm.yaml", "two.h5", "--threads", "2")
    # Bit-identical datasets (the creation time attribute aside).
    with h5py.File(one) as a, h5py.File(two) as b:
        names = []
        a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        assert any(n.startswith("lifecycle/") for n in names)
        for n in names:
            x, y = a[n][()], b[n][()]
            if not isinstance(x, np.ndarray):  # scalar datasets (the scenario text)
                assert x == y, n
                continue
            assert x.dtype == y.dtype and x.shape == y.shape, n
            if x.dtype.kind == "O":  # variable-length strings: compare the values
                assert x.tolist() == y.tolist(), n
            else:
                assert x.tobytes() == y.tobytes(), n
    run = open_run(one)
    ts = run.table("lifecycle/timeseries")
    totals = run.table("lifecycle/totals")
    deps = run.table("lifecycle/deployments")
    # The time series summed over time equal the totals, and the totals the deployments' rows.
    for col in ("energy", "co2e_location", "co2e_market", "requests"):
        assert ts[col].sum() == pytest.approx(totals[col].sum(), rel=1e-9)
    served = totals[totals.entity_kind == "deployment"].groupby("entity")["co2e_location"].sum()
    assert served["assistant-serving"] == pytest.approx(deps.set_index("deployment")["co2e_location"]["assistant-serving"], rel=1e-9)
    # Quarterly retraining: the first run and 19 repeats, each a training entity of its own.
    train = totals[(totals.entity_kind == "training") & (totals.phase == "training")]
    assert len(train.entity.unique()) == 20
    # Three regions, every phase present; monthly bins over five years.
    assert set(ts.region) == {"us-2023-hourly", "de-2023-hourly", "jp-2023-hourly"}
    assert set(ts.phase) == {"training", "inference", "idle", "embodied"}
    series = lifecycle_series(run, by=("phase",))
    assert len(series) == 60
    assert series.to_numpy().sum() == pytest.approx(ts["co2e_location"].sum(), rel=1e-9)
    # One column may be named as a string (before session 35, by="phase" raised KeyError 'p').
    assert lifecycle_series(run, by="phase").equals(series)
    # A grouping or value the table has not is said with those it has (since session 47: a bare
    # KeyError 'entity').
    with pytest.raises(ValueError, match="by='entity' is not a grouping .*phase, site, region, hardware, model"):
        lifecycle_series(run, by="entity")
    with pytest.raises(ValueError, match="value='co2e' is not a value .*energy, co2e_location, co2e_market, requests"):
        lifecycle_series(run, value="co2e")


def test_every_dataset_carries_units(tmp_path):
    # DESIGN.md's output contract: units are attributes on every dataset, the scenario's text
    # included ("" for text; since session 45 /scenario/given and /scenario/resolved had none).
    out = _run(tmp_path, "carpark-cctv.yaml", "units.h5")
    missing = []
    with h5py.File(out, "r") as f:
        f.visititems(lambda name, obj: missing.append(name) if isinstance(obj, h5py.Dataset) and "units" not in obj.attrs else None)
        assert f["scenario/given"].attrs["units"] in ("", b"")
        assert f["scenario/resolved"].attrs["units"] in ("", b"")
    assert missing == []


def test_cctv_useful_inference(tmp_path):
    out = _run(tmp_path, "carpark-cctv.yaml", "cctv.h5")
    d = deployment_summary(out).set_index("deployment").loc["cctv"]
    # 5e6 images/day for 365 days; 0.2 % of them useful.
    assert d["requests"] == pytest.approx(5e6 * 365, rel=1e-9)
    assert d["useful_requests"] == pytest.approx(5e6 * 365 * 0.002, rel=1e-9)
    assert d["gCO2e_per_useful_inference"] == pytest.approx(d["gCO2e_per_inference"] / 0.002, rel=1e-9)
    assert d["unserved_requests"] == 0
    # The units: the file's J and kgCO2e as MWh, tCO2e and gCO2e.
    raw = open_run(out).table("lifecycle/deployments").set_index("deployment").loc["cctv"]
    assert d["energy_MWh"] == pytest.approx(raw["energy"] / 3.6e9, rel=1e-12)
    assert d["co2e_location_tCO2e"] == pytest.approx(raw["co2e_location"] / 1000, rel=1e-12)
    assert d["gCO2e_per_inference"] == pytest.approx(raw["co2e_per_inference"] * 1000, rel=1e-12)


def test_report_and_plot_of_a_lifecycle_run(tmp_path, capsys):
    out = _run(tmp_path, "carpark-cctv.yaml", "cctv.h5")
    text = format_report(out)
    assert "Lifecycle: deployments" in text and "cctv" in text
    assert "idle" in text and "embodied" in text
    png = tmp_path / "cctv.png"
    assert main([str(out), "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_a_deployments_only_run_gives_the_lifecycle_total(tmp_path):
    # /summary/totals holds the jobs (none here), not the lifecycle: the report says whose totals
    # they are and prints the lifecycle's total from /lifecycle/totals, which is the deployment's
    # (since session 44, a review: "Totals:" read "jobs 0, 0 MWh" beside 1.393 MWh).
    out = _run(tmp_path, "carpark-cctv.yaml", "cctv.h5")
    lines = format_report(out).splitlines()
    totals = next(i for i, line in enumerate(lines) if line.startswith("Totals"))
    assert lines[totals].startswith("Totals of the training and inference jobs, one run each")
    assert lines[totals].endswith("; the lifecycle's total is below):")
    assert lines[totals + 2].split()[0] == "0"  # jobs
    life = next(i for i, line in enumerate(lines) if line.startswith("Lifecycle total over the horizon"))
    assert life > totals
    energy, location, market = (float(x) for x in lines[life + 2].split())
    d = deployment_summary(out).set_index("deployment").loc["cctv"]
    assert energy == pytest.approx(d["energy_MWh"], rel=1e-3) and energy > 1.0
    assert location == pytest.approx(d["co2e_location_tCO2e"], rel=1e-3)
    assert market == pytest.approx(d["co2e_market_tCO2e"], rel=1e-3)


def test_series_covers_every_bin_of_the_horizon(tmp_path):
    # Two deployments, January-February and October-November 2025, monthly bins: the series has
    # all twelve months, the empty ones as zeros (files list every bin in /lifecycle/bins), and
    # sums to the time series.
    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    scenario = tmp_path / "gaps.yaml"
    deployment = ("  - {{id: {id}, model: mlp, start: {start}, duration: \"59 days\", hardware: nvidia-a100-sxm4-80gb, "
                  "demand: \"1e6 requests/day\", regions: [{{datacenter: patterson2021-us-average-dc}}]}}\n")
    scenario.write_text("schema_version: 1\n"
                        "scenario: {name: gaps, start: 2025-01-01, horizon: \"365 days\", resolution: month}\n"
                        "models:\n  - {id: mlp, design: {builder: mlp, widths: [64, 256, 10]}}\n"
                        "deployments:\n" + deployment.format(id="a", start="2025-01-01") +
                        deployment.format(id="b", start="2025-10-01"))
    out = tmp_path / "gaps.h5"
    proc = subprocess.run([binary, "run", str(scenario), "-o", str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run = open_run(out)
    series = lifecycle_series(run, by=("phase",))
    assert len(series) == 12
    assert series.loc["2025-05-01"].sum() == 0
    assert series.loc["2025-01-01"].sum() > 0 and series.loc["2025-10-01"].sum() > 0
    assert series.to_numpy().sum() == pytest.approx(run.table("lifecycle/timeseries")["co2e_location"].sum(), rel=1e-9)
    assert str(series.attrs["horizon_end"].date()) == "2026-01-01"
    assert main([str(out), "--plot", str(tmp_path / "gaps.png")]) == 0
    assert (tmp_path / "gaps.png").is_file()


def _run_text(tmp_path, name, text):
    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    scenario = tmp_path / (name + ".yaml")
    scenario.write_text(text)
    out = tmp_path / (name + ".h5")
    proc = subprocess.run([binary, "run", str(scenario), "-o", str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


_MLP_DEPLOYMENT = ("models:\n  - {{id: mlp, design: {{builder: mlp, widths: [64, 256, 10]}}}}\n"
                   "deployments:\n  - {{id: d, model: mlp, start: {start}, duration: \"{duration}\", hardware: nvidia-a100-sxm4-80gb, "
                   "demand: \"1e6 requests/day\", replicas: 1, regions: [{{datacenter: patterson2021-us-average-dc}}]}}\n")


def test_series_and_plot_past_pandas_timestamps(tmp_path):
    # A 300-year horizon (the format allows 1,000) runs past 2262, where pandas' nanosecond
    # timestamps end: the series is indexed by the bins' unix seconds, sums to the time series,
    # and the report and its chart still work (before session 34: OutOfBoundsDatetime).
    out = _run_text(tmp_path, "long", "schema_version: 1\n"
                    "scenario: {name: long, start: 2025-01-01, horizon: \"300 years\", resolution: year}\n" +
                    _MLP_DEPLOYMENT.format(start="2025-01-01", duration="300 years"))
    run = open_run(out)
    series = lifecycle_series(run, by=("phase",))
    assert series.index.name == "bin_start_unix"
    assert len(series) == len(run.table("lifecycle/bins"))
    assert series.index[-1] > 9.2e9  # past 2262
    assert series.to_numpy().sum() == pytest.approx(run.table("lifecycle/timeseries")["co2e_location"].sum(), rel=1e-9)
    assert series.attrs["horizon_end"] == pytest.approx(float(run.table("lifecycle/bins")["bin_end_unix"].iloc[-1]))
    png = tmp_path / "long.png"
    assert main([str(out), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_a_horizon_where_nothing_is_emitted(tmp_path):
    # The one deployment lies wholly after the horizon: an empty series over every bin, and an
    # empty chart, not an error (before session 34: exit 1, "need at least one array").
    out = _run_text(tmp_path, "empty", "schema_version: 1\n"
                    "scenario: {name: empty, start: 2025-01-01, horizon: \"1 year\", resolution: month}\n" +
                    _MLP_DEPLOYMENT.format(start="2027-01-01", duration="1 year"))
    series = lifecycle_series(out, by=("phase",))
    assert len(series) == 12 and series.to_numpy().sum() == 0
    png = tmp_path / "empty.png"
    assert main([str(out), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Never provisioned: no utilisation (NaN, not 0).
    d = open_run(out).table("lifecycle/deployments").set_index("deployment").loc["d"]
    assert np.isnan(d["mean_utilisation"]) and d["requests"] == 0


def test_a_file_size_limit_fails_cleanly(tmp_path):
    # Past `ulimit -f` the write fails with the system's reason, exit 1, and leaves nothing behind
    # (since session 40, a review: before, the signal killed the process and left OUT.tmp-PID, or
    # the failed close crashed libhdf5's teardown at exit, 139).
    import resource
    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    source = Path(os.environ.get("DLCARBON_SOURCE_DIR") or Path(__file__).resolve().parents[2])
    text = (source / "scenarios" / "lifecycle" / "assistant-llm.yaml").read_text()
    assert text.count("resolution: month") == 1
    scenario = tmp_path / "hourly.yaml"
    scenario.write_text(text.replace("resolution: month", "resolution: hour"))
    out = tmp_path / "out" / "h.h5"
    out.parent.mkdir()
    data = source / "data"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    proc = subprocess.run([binary, "run", str(scenario), "--data-dir", str(data), "-o", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("dlcarbon: cannot write " + str(out) + ": ")
    assert proc.stderr.rstrip().endswith("File too large")
    assert list(out.parent.iterdir()) == []


def test_series_and_bins_agree_on_a_fractional_horizon(tmp_path):
    # The horizon's last bin ends at a fractional second; the time series says the same end
    # (since session 40, a review: it was cut to whole seconds there, not in lifecycle/bins).
    out = _run_text(tmp_path, "frac", "schema_version: 1\n"
                    "scenario: {name: frac, start: 2025-01-01, horizon: \"5400.5 s\", resolution: hour}\n" +
                    _MLP_DEPLOYMENT.format(start="2025-01-01", duration="1 year"))
    run = open_run(out)
    bins = run.table("lifecycle/bins")
    series = run.table("lifecycle/timeseries")
    assert float(bins["bin_end_unix"].iloc[-1]) == 1735689600 + 5400.5
    assert float(series["bin_end_unix"].max()) == 1735689600 + 5400.5


def test_what_falls_inside_the_horizon_does_not_depend_on_where_it_starts(tmp_path):
    # Replicas growing 1000 %/year from a deployment that started on 15 December: January 2025's
    # figures are the same whether the horizon starts on 1 January or on 1 December (since session
    # 41, a review: the step the horizon cut read its growth at the cut step's middle, and
    # January's embodied carbon was 1,218.6 kg or 1,191.6 kg). By hand, from the deployment's own
    # monthly steps (middles 30 December and 29 January): 1,222.7 kg.
    deployment = ("models:\n  - {id: mlp, design: {builder: mlp, widths: [64, 256, 10]}}\n"
                  "deployments:\n  - {id: d, model: mlp, start: 2024-12-15, duration: \"1 year\", hardware: nvidia-a100-sxm4-80gb, "
                  "replicas: {initial: 100, growth: \"1000 %/year\"}, demand: \"10 requests/s\", "
                  "regions: [{datacenter: patterson2021-us-average-dc}]}\n")
    january = {}
    for name, scenario in (("jan", "start: 2025-01-01, horizon: \"31 days\""), ("dec", "start: 2024-12-01, horizon: \"62 days\"")):
        out = _run_text(tmp_path, name, "schema_version: 1\nscenario: {name: h, " + scenario + ", resolution: month}\n" + deployment)
        series = open_run(out).table("lifecycle/timeseries")
        rows = series[series["bin_start"].astype(str).str.startswith("2025-01")]
        january[name] = {phase: float(rows[rows["phase"] == phase]["co2e_location"].sum()) for phase in ("embodied", "idle")}
    assert january["jan"]["embodied"] > 0
    for phase in ("embodied", "idle"):
        assert january["jan"][phase] == pytest.approx(january["dec"][phase], rel=1e-12), phase


def test_times_before_the_year_1000_are_written_in_four_digits(tmp_path):
    # ISO 8601 writes year 1 as 0001 (since session 41, a review: strftime's %Y wrote "1-01-01").
    out = _run_text(tmp_path, "year1", "schema_version: 1\n"
                    "scenario: {name: y, start: 0001-01-01, horizon: \"2 days\", resolution: day}\n" +
                    _MLP_DEPLOYMENT.format(start="0001-01-01", duration="1 day"))
    with h5py.File(out) as f:
        assert f["lifecycle/timeseries/bin_start"][0] == b"0001-01-01T00:00:00Z"
        assert f["lifecycle/serving/from"][0] == b"0001-01-01T00:00:00Z"


def test_report_of_a_table_without_a_column_it_reads_exits_2(tmp_path, capsys):
    # A table present but without a column the report reads (the time series' phase): a clear
    # error naming the file, exit 2 (since session 41, a review: a KeyError traceback, exit 1).
    out = _run_text(tmp_path, "nophase", "schema_version: 1\n"
                    "scenario: {name: n, start: 2025-01-01, horizon: \"2 days\", resolution: day}\n" +
                    _MLP_DEPLOYMENT.format(start="2025-01-01", duration="1 day"))
    with h5py.File(out, "r+") as f:
        group = f["lifecycle/timeseries"]
        del group["phase"]
        columns = group.attrs["columns"]
        columns = columns.decode() if isinstance(columns, bytes) else columns
        group.attrs["columns"] = ",".join(c for c in columns.split(",") if c != "phase")
    assert main([str(out)]) == 2
    err = capsys.readouterr().err
    assert "not a complete dlcarbon output file" in err and str(out) in err


def test_series_of_a_horizon_whose_empty_first_bin_starts_before_1677(tmp_path):
    # Nothing is emitted in the first bin, which starts before pandas' first timestamp: the index
    # is unix seconds, as past 2262 (since session 41, a review: OutOfBoundsDatetime).
    out = _run_text(tmp_path, "e1677", "schema_version: 1\n"
                    "scenario: {name: e, start: 1677-09-01, horizon: \"90 days\", resolution: month}\n" +
                    _MLP_DEPLOYMENT.format(start="1677-11-01", duration="10 days"))
    series = lifecycle_series(out)
    assert series.index.name == "bin_start_unix"
    assert float(series.index[0]) == -9225100800.0  # 1677-09-01T00:00:00Z
    assert format_report(out).startswith("dlcarbon")
