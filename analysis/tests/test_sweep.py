"""Sweeps end to end with the real binary (skipped when DLCARBON_BIN is not set): one row per
point in pandas, points that do not fit kept with their reason, shards merged equal to the whole
sweep, and bit-identical tables on 1 and 2 threads."""
import os
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from dlcarbon_analysis import open_run, sweep_parameters, sweep_points
from dlcarbon_analysis.report import format_report

SWEEP = "llama-7b-parallelism.sweep.yaml"


def _dlcarbon(*args):
    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    proc = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def _sweep_file():
    source = Path(os.environ.get("DLCARBON_SOURCE_DIR") or Path(__file__).resolve().parents[2])
    return source / "scenarios" / "sweeps" / SWEEP


def _datasets(path):
    out = {}
    with h5py.File(path) as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name.startswith("sweep/") and not name.startswith("sweep/info"):
                out[name] = obj[()]
        f.visititems(visit)
    return out


def test_shipped_sweep_in_pandas(tmp_path):
    out = tmp_path / "sweep.h5"
    _dlcarbon("sweep", _sweep_file(), "-o", out, "--quiet")
    run = open_run(out)
    keys = sweep_parameters(run)
    assert keys == ["training.pretrain.parallelism.tensor", "training.pretrain.parallelism.pipeline",
                    "training.pretrain.datacenter"]
    points = sweep_points(run)
    assert list(points.index) == list(range(18))
    # tensor 1 x pipeline 1 does not fit on an 80 GB H100 (in both data centres): a result with
    # its reason, no figures.
    cannot = points[points.status == "cannot run"]
    assert list(cannot.index) == [0, 1]
    assert all(r.startswith("pretrain: does not fit") for r in cannot.reason)
    assert cannot.facility_energy_MWh.isna().all()
    ok = points[points.status == "ok"]
    assert (ok.facility_energy_MWh > 0).all()
    # The units: the file's J, kgCO2e and s as MWh, tCO2e and accelerator-hours.
    raw = run.table("sweep/points").set_index("point").loc[ok.index]
    np.testing.assert_allclose(ok.facility_energy_MWh, raw.facility_energy / 3.6e9, rtol=1e-12)
    np.testing.assert_allclose(ok.co2e_location_tCO2e, raw.co2e_location / 1000, rtol=1e-12)
    np.testing.assert_allclose(ok.accelerator_hours, raw.accelerator_time / 3600, rtol=1e-12)
    # The same job in Quebec and in Virginia: equal energy, CO2e in the ratio of the grids.
    va = ok[ok["training.pretrain.datacenter"] == "us-virginia-hyperscale"]
    qc = ok[ok["training.pretrain.datacenter"] == "ca-quebec-hyperscale"]
    np.testing.assert_array_equal(va.facility_energy_MWh.to_numpy(), qc.facility_energy_MWh.to_numpy())
    ratio = qc.co2e_location_tCO2e.to_numpy() / va.co2e_location_tCO2e.to_numpy()
    assert np.allclose(ratio, ratio[0], rtol=1e-12) and ratio[0] < 0.05
    # Per-job rows carry their point.
    jobs = run.table("sweep/training")
    assert list(jobs.point) == list(range(18))
    assert (jobs.loc[2:, "mfu"] > 0).all()
    text = format_report(run)
    assert "18 of 18 points, 2 cannot run" in text
    # Why each point cannot run, as a single run's report says it for a job (since session 35).
    assert "point 0 cannot run: pretrain: does not fit" in text
    assert "point 1 cannot run: pretrain: does not fit" in text


def test_threads_and_shards_do_not_change_a_bit(tmp_path):
    _dlcarbon("sweep", _sweep_file(), "-o", tmp_path / "one.h5", "--threads", "1", "--quiet")
    _dlcarbon("sweep", _sweep_file(), "-o", tmp_path / "two.h5", "--threads", "2", "--quiet")
    for i in range(4):
        _dlcarbon("sweep", _sweep_file(), "-o", tmp_path / "part.h5", "--shard", f"{i}/4", "--quiet")
    shards = sorted(tmp_path.glob("part.shard-*-of-4.h5"))
    assert len(shards) == 4
    _dlcarbon("merge", "-o", tmp_path / "merged.h5", *shards, "--quiet")
    one = _datasets(tmp_path / "one.h5")
    assert "sweep/points/facility_energy" in one
    for other in ("two.h5", "merged.h5"):
        two = _datasets(tmp_path / other)
        assert one.keys() == two.keys()
        for name, x in one.items():
            y = two[name]
            assert x.dtype == y.dtype and x.shape == y.shape, name
            if x.dtype.kind == "O":
                assert x.tolist() == y.tolist(), name
            else:
                assert x.tobytes() == y.tobytes(), name


def test_gather_under_concurrent_shards(tmp_path):
    """Shard 0 with --gather waits for shard 1, run as another process at the same time (as
    mpirun would start them), then merges both into the whole file."""
    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    out = tmp_path / "g.h5"
    first = subprocess.Popen([binary, "sweep", str(_sweep_file()), "-o", str(out), "--shard", "0/2", "--gather", "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _dlcarbon("sweep", _sweep_file(), "-o", out, "--shard", "1/2", "--quiet")
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    _dlcarbon("sweep", _sweep_file(), "-o", tmp_path / "whole.h5", "--quiet")
    whole, gathered = _datasets(tmp_path / "whole.h5"), _datasets(out)
    assert whole.keys() == gathered.keys()
    for name, x in whole.items():
        y = gathered[name]
        assert (x.tolist() == y.tolist()) if x.dtype.kind == "O" else (x.tobytes() == y.tobytes()), name


def test_gather_with_fresh_waits_for_the_other_shards_new_files(tmp_path):
    # Both shards ran; the sweep is edited and relaunched with --fresh, outside any launcher. Shard
    # 0 with --gather finishes its points before shard 1 starts again: it waits for shard 1's new
    # file instead of taking (or refusing) the old one, an edited sweep's (since session 42, a
    # review: it exited 2 at once, naming shard 1's old file).
    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    sweep = tmp_path / "s.sweep.yaml"
    sweep.write_text(_sweep_file().read_text().replace("scenario: ", "scenario: " + str(_sweep_file().parent) + "/", 1))
    out = tmp_path / "g.h5"
    for shard in ("0/2", "1/2"):
        _dlcarbon("sweep", sweep, "-o", out, "--shard", shard, "--quiet")
    sweep.write_text(sweep.read_text() + "# edited\n")
    own = tmp_path / "g.shard-0-of-2.h5"
    before = own.stat().st_mtime_ns
    first = subprocess.Popen([binary, "sweep", str(sweep), "-o", str(out), "--shard", "0/2", "--gather", "--fresh", "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    def written():
        try:
            return own.stat().st_mtime_ns != before
        except FileNotFoundError:
            return False

    while first.poll() is None and not written() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # the gather has looked at shard 1's old file by now
    assert first.poll() is None, first.communicate()[1]
    _dlcarbon("sweep", sweep, "-o", out, "--shard", "1/2", "--fresh", "--quiet")
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    _dlcarbon("sweep", sweep, "-o", tmp_path / "whole.h5", "--quiet")
    whole, gathered = _datasets(tmp_path / "whole.h5"), _datasets(out)
    assert whole.keys() == gathered.keys()
    for name, x in whole.items():
        y = gathered[name]
        assert (x.tolist() == y.tolist()) if x.dtype.kind == "O" else (x.tobytes() == y.tobytes()), name


def test_gather_refuses_at_once_when_another_shard_will_refuse_its_file(tmp_path):
    # Shard 1's file is another sweep's, left by an earlier job: shard 1 will refuse it (without
    # --fresh) and write none, so shard 0 with --gather, waiting for a file of its own job, would
    # wait forever. It refuses at once instead, exit 2, its own file unwritten (since session 41, a
    # review).
    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    other = tmp_path / "other.sweep.yaml"
    other.write_text(_sweep_file().read_text().replace("scenario: ", "scenario: " + str(_sweep_file().parent) + "/", 1)
                     + "# another sweep\n")
    out = tmp_path / "g.h5"
    earlier = dict(os.environ, SLURM_JOB_ID="1")
    subprocess.run([binary, "sweep", str(other), "-o", str(out), "--shard", "1/2", "--quiet"], env=earlier, check=True)
    assert (tmp_path / "g.shard-1-of-2.h5").exists()
    proc = subprocess.run([binary, "sweep", str(_sweep_file()), "-o", str(out), "--shard", "0/2", "--gather", "--quiet"],
                          env=dict(os.environ, SLURM_JOB_ID="2"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "g.shard-1-of-2.h5: holds another sweep" in proc.stderr
    assert "shard 1 will refuse it" in proc.stderr
    assert not (tmp_path / "g.shard-0-of-2.h5").exists()
    assert not out.exists()


def test_a_shard_with_no_points_reads_as_an_empty_sweep(tmp_path):
    # More shards than points (a Slurm array larger than the sweep): the last shards hold none, and
    # the writer leaves tables without rows out. Before session 31 the report took such a file for
    # a single run and failed, and sweep_points raised.
    proc = _dlcarbon("sweep", _sweep_file(), "-o", tmp_path / "part.h5", "--shard", "19/20", "--quiet")
    shard = tmp_path / "part.shard-19-of-20.h5"
    assert shard.exists(), proc.stdout
    points = sweep_points(shard)
    assert len(points) == 0
    assert {"status", "facility_energy_MWh", "co2e_location_tCO2e"} <= set(points.columns)
    assert points.attrs["units"]["facility_energy_MWh"] == "MWh"
    text = format_report(shard)
    assert text.startswith("dlcarbon sweep: ")
    assert "0 of 18 points" in text
    # The same columns, dtypes and units as a shard with points (since session 35; before, the
    # keys' units were "", the text key float64, the index float64 and "point" listed in units).
    _dlcarbon("sweep", _sweep_file(), "-o", tmp_path / "full.h5", "--shard", "1/20", "--quiet")
    full = sweep_points(tmp_path / "full.shard-1-of-20.h5")
    assert len(full) > 0
    assert list(points.columns) == list(full.columns)
    assert dict(points.dtypes) == dict(full.dtypes)
    assert points.index.dtype == full.index.dtype
    assert points.attrs["units"] == full.attrs["units"]


def _dlcarbon_fails(*args):
    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=300)


def _replace(path, dataset, values):
    with h5py.File(path, "r+") as f:
        dtype = f[dataset].dtype
        attrs = dict(f[dataset].attrs)
        del f[dataset]
        f.create_dataset(dataset, data=np.asarray(values, dtype=dtype))
        for key, value in attrs.items():
            f[dataset].attrs[key] = value


def test_a_file_of_another_build_is_not_resumed_or_merged(tmp_path):
    # The build is in the fingerprint (since session 41, a review: a rebuilt dlcarbon resumed a
    # file whose points the old model had costed). Another build's file is mimicked by its
    # recorded commit and fingerprint; the refusal says which builds.
    binary = os.environ.get("DLCARBON_BIN")
    if not binary:
        pytest.skip("DLCARBON_BIN is not set (point it to a built dlcarbon executable)")
    _dlcarbon("sweep", _sweep_file(), "-o", tmp_path / "s.h5", "--shard", "0/2", "--quiet")
    _dlcarbon("sweep", _sweep_file(), "-o", tmp_path / "s.h5", "--shard", "1/2", "--quiet")
    old = tmp_path / "s.shard-1-of-2.h5"
    with h5py.File(old, "r+") as f:
        f.attrs["git_sha"] = "0123456789ab"
        fingerprint = f["sweep/info/fingerprint"][()]
    _replace(old, "sweep/info/fingerprint", [b"0" * len(fingerprint[0])])
    before = old.read_bytes()
    proc = _dlcarbon_fails("sweep", _sweep_file(), "-o", tmp_path / "s.h5", "--shard", "1/2", "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert "s.shard-1-of-2.h5: written by another build of dlcarbon (" in proc.stderr, proc.stderr
    assert "(0123456789ab); this is " in proc.stderr, proc.stderr
    assert old.read_bytes() == before
    proc = _dlcarbon_fails("merge", "-o", tmp_path / "m.h5", tmp_path / "s.shard-0-of-2.h5", old)
    assert proc.returncode == 2, proc.stderr
    assert "s.shard-1-of-2.h5: written by another build of dlcarbon" in proc.stderr, proc.stderr
    assert not (tmp_path / "m.h5").exists()


def test_damaged_files_are_bad_input(tmp_path):
    """A table whose columns differ in length, or a sweep file holding a point outside its sweep or
    shard, is bad input (exit 2, nothing written) for inspect, merge and a resumed sweep (since
    session 37, a review: they crashed, or merged a file marked complete with a point missing)."""
    whole = tmp_path / "sweep.h5"
    _dlcarbon("sweep", _sweep_file(), "-o", whole, "--quiet")
    # A column one row short.
    short = tmp_path / "short.h5"
    short.write_bytes(whole.read_bytes())
    with h5py.File(short) as f:
        flops = f["sweep/training/flops"][()]
    _replace(short, "sweep/training/flops", flops[:-1])
    for args in (["inspect", short], ["merge", "-o", tmp_path / "m1.h5", short], ["sweep", _sweep_file(), "-o", short, "--quiet"]):
        proc = _dlcarbon_fails(*args)
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
        assert "table sweep/training: column flops has" in proc.stderr, proc.stderr
    assert not (tmp_path / "m1.h5").exists()
    # A point index past the sweep's 18 points.
    beyond = tmp_path / "beyond.h5"
    beyond.write_bytes(whole.read_bytes())
    with h5py.File(beyond) as f:
        points = f["sweep/points/point"][()]
        training = f["sweep/training/point"][()]
    points[points == 17] = 40
    training[training == 17] = 40
    _replace(beyond, "sweep/points/point", points)
    _replace(beyond, "sweep/training/point", training)
    before = beyond.read_bytes()
    for args in (["merge", "-o", tmp_path / "m2.h5", beyond], ["sweep", _sweep_file(), "-o", beyond, "--quiet"]):
        proc = _dlcarbon_fails(*args)
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
        assert "point 40 is not one of shard 0 of 1 of a sweep of 18 points" in proc.stderr, proc.stderr
    assert not (tmp_path / "m2.h5").exists()
    assert beyond.read_bytes() == before


def test_an_empty_shard_has_the_dtypes_and_units_of_a_full_one_for_a_range_with_a_unit(tmp_path):
    # A grid's range with a unit is listed as "300 days | 400 days" and written as numbers in days:
    # an empty shard had taken the key for text (since session 41, a review; the writer now says
    # which keys are numbers, sweep/parameters' `numeric`).
    sweep = tmp_path / "unit.sweep.yaml"
    sweep.write_text("schema_version: 1\n"
                     f"sweep: {{name: unit, scenario: {_sweep_file().parent / 'llama-7b-h100.yaml'}}}\n"
                     "parameters:\n  - {key: scenario.horizon, range: [300, 400], steps: 2, unit: days}\n"
                     "  - {key: training.pretrain.datacenter, values: [us-virginia-hyperscale, ca-quebec-hyperscale]}\n")
    _dlcarbon("sweep", sweep, "-o", tmp_path / "u.h5", "--shard", "0/8", "--quiet")
    _dlcarbon("sweep", sweep, "-o", tmp_path / "u.h5", "--shard", "7/8", "--quiet")
    full, empty = sweep_points(tmp_path / "u.shard-0-of-8.h5"), sweep_points(tmp_path / "u.shard-7-of-8.h5")
    assert len(full) == 1 and len(empty) == 0
    assert dict(empty.dtypes) == dict(full.dtypes)
    assert empty.attrs["units"] == full.attrs["units"]
    assert full["scenario.horizon"].dtype == float and full.attrs["units"]["scenario.horizon"] == "days"
    assert full["training.pretrain.datacenter"].dtype == object
    # A file from before session 41 (no `numeric`): guessed from the listed values, the unit after
    # the number, the same dtypes.
    with h5py.File(tmp_path / "u.shard-7-of-8.h5", "r+") as f:
        group = f["sweep/parameters"]
        del group["numeric"]
        columns = group.attrs["columns"]
        columns = columns.decode() if isinstance(columns, bytes) else columns
        group.attrs["columns"] = ",".join(c for c in columns.split(",") if c != "numeric")
    older = sweep_points(tmp_path / "u.shard-7-of-8.h5")
    assert dict(older.dtypes) == dict(full.dtypes)
    assert older.attrs["units"] == full.attrs["units"]
