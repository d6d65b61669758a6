"""dlcarbon_analysis.load: reading files written per docs/output-format.md, and every error."""

import math
import os
import subprocess
import pickle

import h5py
import numpy as np
import pytest

from dlcarbon_analysis import DlcarbonFormatError, Run, open_run

TRAINING_ORDER = [
    "job", "model", "hardware", "datacenter", "region", "accelerators", "duration",
    "accelerator_time", "power_per_accelerator", "it_energy", "pue", "facility_energy",
    "intensity_location", "co2e_location", "intensity_market", "co2e_market", "tokens", "flops",
]


# --- a good file ---------------------------------------------------------------------------

def test_root_attributes(run_file):
    run = open_run(run_file)
    assert isinstance(run, Run)
    assert run.attrs == {
        "format_version": 1,
        "dlcarbon_version": "0.1.0",
        "git_sha": "abc123def456",
        "created": "2026-11-26T18:00:00Z",
        "seed": 42,
        "scenario_name": "test-run",
    }
    # Plain Python types, not numpy scalars or bytes.
    assert type(run.attrs["format_version"]) is int
    assert type(run.attrs["seed"]) is int
    assert type(run.attrs["git_sha"]) is str
    assert run.format_version == 1
    assert run.scenario_name == "test-run"
    assert run.path == run_file


def test_open_run_accepts_str_path(run_file):
    assert open_run(str(run_file)).scenario_name == "test-run"


def test_scenario_texts_are_str_byte_for_byte(run_file, scenario_texts):
    given, resolved = scenario_texts
    run = open_run(run_file)
    assert type(run.scenario_given) is str
    assert type(run.scenario_resolved) is str
    assert run.scenario_given == given
    assert run.scenario_resolved == resolved
    assert "Zürich – « 1,287 MWh »" in run.scenario_given  # UTF-8 decoded, not bytes


def test_tables_listed(run_file):
    assert open_run(run_file).tables == ["summary/totals", "summary/training"]


def test_training_table_column_order_follows_columns_attribute(run_file):
    df = open_run(run_file).table("summary/training")
    # h5py lists the datasets alphabetically; the `columns` attribute gives the order.
    with h5py.File(run_file, "r") as f:
        assert list(f["summary/training"]) == sorted(TRAINING_ORDER)
    assert list(df.columns) == TRAINING_ORDER
    assert len(df) == 3


def test_training_table_values(run_file):
    df = open_run(run_file).table("summary/training")
    assert list(df["job"]) == ["gpt3", "bert-ft", "sweep-τ"]
    assert list(df["model"]) == ["gpt-3", "bert-base", ""]
    assert list(df["accelerators"]) == [10000, 64, 4]
    assert df["accelerators"].dtype == np.int64
    assert df["facility_energy"].dtype == np.float64
    assert df["facility_energy"].tolist() == [4.6332e12, 1.8e11, 4.32e7]
    assert df["co2e_location"].tolist() == [552000.0, 20000.0, 4.8]
    # 10,000 x 1,278,720 s = 1.27872e10 accelerator-seconds
    assert df["accelerator_time"].iloc[0] == pytest.approx(1.27872e10)
    # 552,000 kgCO2e / 4.6332e12 J = 1.19140e-7 kgCO2e/J (428.9 gCO2e/kWh)
    assert df["intensity_location"].iloc[0] == pytest.approx(1.19140e-7, rel=1e-5)
    # NaN where the scenario gives none
    assert math.isnan(df["co2e_market"].iloc[0])
    assert df["co2e_market"].iloc[1] == 1000.0
    assert math.isnan(df["tokens"].iloc[2])


def test_text_columns_are_decoded_str(run_file):
    df = open_run(run_file).table("summary/training")
    for column in ["job", "model", "hardware", "datacenter", "region"]:
        assert df[column].dtype == object
        assert all(type(v) is str for v in df[column]), column
    assert df["datacenter"].iloc[1] == "rechenzentrum-zürich"
    assert df["job"].iloc[2] == "sweep-τ"


def test_units_kept_in_attrs(run_file):
    df = open_run(run_file).table("summary/training")
    units = df.attrs["units"]
    assert list(units) == TRAINING_ORDER
    assert units["job"] == ""
    assert units["accelerators"] == "1"
    assert units["duration"] == "s"
    assert units["power_per_accelerator"] == "W"
    assert units["facility_energy"] == "J"
    assert units["intensity_location"] == "kgCO2e/J"
    assert units["co2e_location"] == "kgCO2e"
    assert units["flops"] == "FLOP"
    assert df.attrs["table"] == "summary/training"
    assert df.attrs["source"] == str(run_file)


def test_totals_table(run_file):
    run = open_run(run_file)
    totals = run.table("/summary/totals")  # a leading slash is accepted
    assert list(totals.columns) == ["facility_energy", "it_energy", "co2e_location", "co2e_market", "jobs"]
    assert len(totals) == 1
    assert totals["facility_energy"].iloc[0] == 4.8132432e12
    assert totals["jobs"].iloc[0] == 3
    assert math.isnan(totals["co2e_market"].iloc[0])
    assert totals.attrs["units"] == {
        "facility_energy": "J", "it_energy": "J", "co2e_location": "kgCO2e",
        "co2e_market": "kgCO2e", "jobs": "1",
    }


def test_empty_table(write_run, training_columns):
    empty = {c: ([] if u == "" else np.array([], dtype=float), u)
             for c, (_, u) in training_columns.items()}
    path = write_run(training=empty)
    df = open_run(path).table("summary/training")
    assert list(df.columns) == TRAINING_ORDER
    assert len(df) == 0


def test_extra_datasets_not_in_columns_are_ignored(run_file):
    with h5py.File(run_file, "r+") as f:
        f["summary/totals"].create_dataset("future_column", data=np.zeros(1))
    df = open_run(run_file).table("summary/totals")
    assert "future_column" not in df.columns


def test_table_returns_a_fresh_frame(run_file):
    run = open_run(run_file)
    a = run.table("summary/training")
    a.loc[0, "facility_energy"] = 0.0
    assert run.table("summary/training")["facility_energy"].iloc[0] == 4.6332e12


# --- errors --------------------------------------------------------------------------------

def _error(path, *fragments):
    with pytest.raises(DlcarbonFormatError) as info:
        open_run(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    assert info.value.path == str(path)
    return info.value


def test_missing_file(tmp_path):
    _error(tmp_path / "nope.h5", "no such file")


def test_directory(tmp_path):
    _error(tmp_path, "is a directory")


def test_not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("format_version: 1\nthis is not HDF5\n")
    _error(path, "not an HDF5 file")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.h5"
    path.write_bytes(b"")
    _error(path, "not an HDF5 file")


def test_missing_format_version(run_file):
    with h5py.File(run_file, "r+") as f:
        del f.attrs["format_version"]
    _error(run_file, "format_version", "not a dlcarbon output file")


def test_wrong_format_version(write_run):
    path = write_run(attrs={"format_version": np.int64(2)})
    err = _error(path, "format_version 2 is not supported", "reads 1")
    assert "format_version 2" in err.problem


def test_format_version_zero(write_run):
    _error(write_run(attrs={"format_version": np.int64(0)}), "format_version 0 is not supported")


def test_format_version_not_an_integer(write_run):
    _error(write_run(attrs={"format_version": "1"}), "format_version", "should be an integer", "'1'")
    _error(write_run("float.h5", attrs={"format_version": 1.0}), "should be an integer")


def test_columns_of_unequal_length(write_run, training_columns):
    values, units = training_columns["co2e_location"]
    training_columns["co2e_location"] = (np.append(values, 7.0), units)  # 4 rows, others 3
    err = _error(write_run(training=training_columns),
                 "summary/training", "unequal length", "'job' has 3 rows", "'co2e_location' has 4")
    assert "facility_energy" not in err.problem  # only the differing column is named


def test_columns_of_unequal_length_text_column(write_run, training_columns):
    training_columns["region"] = (["us-average"], "")
    _error(write_run(training=training_columns), "unequal length", "'region' has 1")


def test_column_listed_but_missing(run_file):
    with h5py.File(run_file, "r+") as f:
        del f["summary/training/pue"]
    _error(run_file, "summary/training", "'pue'", "has no dataset")


def test_column_without_units(run_file):
    with h5py.File(run_file, "r+") as f:
        del f["summary/training/facility_energy"].attrs["units"]
    _error(run_file, "facility_energy", "'units'")


def test_column_not_1d(run_file):
    with h5py.File(run_file, "r+") as f:
        g = f["summary/totals"]
        del g["jobs"]
        g.create_dataset("jobs", data=np.zeros((1, 1), dtype=np.int64)).attrs["units"] = "1"
    _error(run_file, "'jobs'", "1-D")


def test_duplicate_column_names(run_file):
    with h5py.File(run_file, "r+") as f:
        f["summary/totals"].attrs["columns"] = "jobs,it_energy,jobs"
    _error(run_file, "jobs", "more than once")


def test_missing_scenario_text(run_file):
    with h5py.File(run_file, "r+") as f:
        del f["scenario/resolved"]
    _error(run_file, "/scenario/resolved")


def test_scenario_text_not_a_string(run_file):
    with h5py.File(run_file, "r+") as f:
        del f["scenario/given"]
        f["scenario"].create_dataset("given", data=np.arange(3))
    _error(run_file, "/scenario/given", "scalar string")


def test_unknown_table(run_file):
    run = open_run(run_file)
    with pytest.raises(DlcarbonFormatError) as info:
        run.table("summary/inference")
    message = str(info.value)
    assert str(run_file) in message
    assert "summary/inference" in message
    assert "summary/training" in message  # lists what there is


def test_file_removed_after_open(run_file):
    run = open_run(run_file)
    run_file.unlink()
    with pytest.raises(DlcarbonFormatError, match="no such file"):
        run.table("summary/training")


def test_error_is_picklable(tmp_path):
    with pytest.raises(DlcarbonFormatError) as info:
        open_run(tmp_path / "nope.h5")
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value)
    assert again.path == info.value.path


# --- end to end with the real binary -------------------------------------------------------

def test_gpt3_run_from_the_dlcarbon_binary(tmp_path):
    """Runs `$DLCARBON_BIN run scenarios/published/patterson2021-gpt3.yaml` and reads the file:
    Patterson et al. 2021 give 1,287 MWh and 552 tCO2e (location-based) for GPT-3."""
    import os
    import subprocess
    from pathlib import Path

    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    source = Path(os.environ.get("DLCARBON_SOURCE_DIR") or Path(__file__).resolve().parents[2])
    scenario = source / "scenarios" / "published" / "patterson2021-gpt3.yaml"
    assert Path(binary).is_file(), f"DLCARBON_BIN={binary} is not a file"
    assert scenario.is_file(), f"{scenario} is missing (DLCARBON_SOURCE_DIR={source})"

    out = tmp_path / "tmp.h5"
    proc = subprocess.run([binary, "run", str(scenario), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"dlcarbon run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"

    run = open_run(out)
    assert run.format_version == 1
    assert run.scenario_given == scenario.read_bytes().decode("utf-8")  # byte for byte
    training = run.table("summary/training")
    totals = run.table("summary/totals")
    assert training.attrs["units"]["facility_energy"] == "J"
    assert totals.attrs["units"]["co2e_location"] == "kgCO2e"
    # 1,287 MWh = 1,287 x 3.6e9 J = 4.6332e12 J; 552 tCO2e = 552,000 kgCO2e
    assert totals["facility_energy"].iloc[0] == pytest.approx(4.6332e12, rel=0.01)
    assert totals["co2e_location"].iloc[0] == pytest.approx(552000.0, rel=0.01)
    assert training["facility_energy"].sum() == pytest.approx(totals["facility_energy"].iloc[0], rel=1e-9)


def test_hidden_costs_run_from_the_dlcarbon_binary(tmp_path):
    """Runs scenarios/hidden-costs/resnet50-layouts.yaml: on the measured CPU the nhwc layout
    costs less per image than nchw (its convolutions were measured faster), a reorder of nchw
    requests adds to nhwc, and the uncalibrated GPU shows no difference between layouts."""
    import os
    import subprocess
    from pathlib import Path

    from dlcarbon_analysis import inference_summary

    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    source = Path(os.environ.get("DLCARBON_SOURCE_DIR") or Path(__file__).resolve().parents[2])
    scenario = source / "scenarios" / "hidden-costs" / "resnet50-layouts.yaml"
    out = tmp_path / "layouts.h5"
    proc = subprocess.run([binary, "run", str(scenario), "-o", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    inf = inference_summary(out).set_index("job")
    per = inf["facility_energy_per_inference_J"]
    assert per["cpu-nhwc"] < per["cpu-nchw"]
    assert per["cpu-nhwc-from-nchw-requests"] > per["cpu-nhwc"]
    assert per["gpu-nhwc"] == pytest.approx(per["gpu-nchw"], rel=1e-12)
    # Totals are the per-inference energy times the count (1e6), in kWh: J / 3.6e6.
    assert inf["facility_energy_kWh"]["cpu-nchw"] == pytest.approx(per["cpu-nchw"] * 1e6 / 3.6e6, rel=1e-9)


def test_inspect_of_a_file_whose_dataset_claims_more_than_memory(tmp_path):
    # A damaged file can give a column any length; `dlcarbon inspect` says so and exits 2 (since
    # session 34: an internal failure, std::bad_alloc). A chunked dataset of 2^61 values that were
    # never written stands in for the damage.
    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format_version"] = np.int64(1)
        for key in ("dlcarbon_version", "git_sha", "created", "scenario_name"):
            f.attrs[key] = "x"
        f.attrs["seed"] = np.int64(1)
        f.create_dataset("scenario/given", data="a")
        f.create_dataset("scenario/resolved", data="a")
        g = f.create_group("summary/totals")
        g.attrs["columns"] = "energy"
        g.create_dataset("energy", shape=(2 ** 61,), dtype="f8", chunks=(1024,)).attrs["units"] = "J"
    proc = subprocess.run([binary, "inspect", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "a dataset claims more memory than there is" in proc.stderr


def test_inference_summary_of_a_file_without_inference_jobs_is_empty(tmp_path):
    """A training-only file has no /summary/inference: an empty frame with the documented columns,
    as training_summary gives for a file without training jobs (since session 42; it raised)."""
    from pathlib import Path

    from dlcarbon_analysis import inference_summary, training_summary

    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    source = Path(os.environ.get("DLCARBON_SOURCE_DIR") or Path(__file__).resolve().parents[2])
    out = tmp_path / "quick.h5"
    proc = subprocess.run([binary, "run", str(source / "scenarios" / "quickstart.yaml"), "-o", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(training_summary(out)) > 0
    inf = inference_summary(out)
    assert len(inf) == 0
    assert list(inf.columns)[:3] == ["job", "model", "hardware"]
    assert "facility_energy_kWh" in inf.columns
    assert inf.attrs["units"]["facility_energy_kWh"] == "kWh"


def test_empty_inference_summary_has_the_dtypes_and_units_of_a_full_one(tmp_path):
    """The frame of a file without inference jobs has each column's dtype and units as a file with
    them gives (since session 44, a review: `batch` was float64, the binary writes int64)."""
    from pathlib import Path

    from dlcarbon_analysis import inference_summary

    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    source = Path(os.environ.get("DLCARBON_SOURCE_DIR") or Path(__file__).resolve().parents[2])
    files = {}
    for name, scenario in (("none", "quickstart.yaml"), ("full", "hidden-costs/resnet50-layouts.yaml")):
        files[name] = tmp_path / f"{name}.h5"
        proc = subprocess.run([binary, "run", str(source / "scenarios" / scenario), "-o", str(files[name]), "--quiet"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    empty, full = inference_summary(files["none"]), inference_summary(files["full"])
    assert len(empty) == 0 and len(full) > 0
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()
    assert empty.attrs["units"] == full.attrs["units"]
