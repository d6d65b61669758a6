"""Reading a dlcarbon output file (docs/output-format.md, format_version 1).

    run = open_run("gpt3.h5")
    run.attrs["scenario_name"], run.scenario_given, run.scenario_resolved
    run.tables                      # ["summary/totals", "summary/training", ...]
    df = run.table("summary/training")
    df.attrs["units"]["facility_energy"]   # "J"

Every problem with the file (missing, not HDF5, wrong format_version, a table whose columns
differ in length, ...) raises DlcarbonFormatError naming the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import h5py
import numpy as np
import pandas as pd

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)

PathLike = Union[str, "os.PathLike[str]"]


class DlcarbonFormatError(Exception):
    """A file that is not a readable dlcarbon output file: `path` and `problem` say why."""

    def __init__(self, path: PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        return (type(self), (self.path, self.problem))


def _plain(value: Any) -> Any:
    """An HDF5 attribute value as a plain Python value (str, int, float, list)."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _text_attr(path: Path, obj: Any, name: str, where: str) -> str:
    if name not in obj.attrs:
        raise DlcarbonFormatError(path, f"{where} has no '{name}' attribute")
    value = _plain(obj.attrs[name])
    if not isinstance(value, str):
        raise DlcarbonFormatError(path, f"{where}: attribute '{name}' should be a string, got {value!r}")
    return value


def _check_format_version(path: Path, f: h5py.File) -> int:
    if "format_version" not in f.attrs:
        raise DlcarbonFormatError(
            path, "no 'format_version' root attribute: not a dlcarbon output file"
        )
    raw = f.attrs["format_version"]
    if not isinstance(raw, (int, np.integer)) or isinstance(raw, (bool, np.bool_)):
        raise DlcarbonFormatError(
            path, f"root attribute 'format_version' should be an integer, got {_plain(raw)!r}"
        )
    version = int(raw)
    if version not in SUPPORTED_FORMAT_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_FORMAT_VERSIONS)
        raise DlcarbonFormatError(
            path,
            f"format_version {version} is not supported by this reader (it reads {supported}); "
            "use the dlcarbon_analysis that comes with the dlcarbon that wrote the file",
        )
    return version


def _read_text_dataset(path: Path, f: h5py.File, name: str) -> str:
    if name not in f:
        raise DlcarbonFormatError(path, f"missing dataset /{name}")
    ds = f[name]
    if not isinstance(ds, h5py.Dataset):
        raise DlcarbonFormatError(path, f"/{name} should be a dataset, not a group")
    if ds.shape != () or h5py.check_string_dtype(ds.dtype) is None:
        raise DlcarbonFormatError(
            path, f"/{name} should be a scalar string, got shape {ds.shape} of {ds.dtype}"
        )
    try:
        return ds.asstr()[()]
    except UnicodeDecodeError as e:
        raise DlcarbonFormatError(path, f"/{name} is not valid UTF-8 ({e})") from None


def _find_tables(f: h5py.File) -> List[str]:
    """Names (no leading slash) of every group with a `columns` attribute, sorted."""
    names: List[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and "columns" in obj.attrs:
            names.append(name)

    f.visititems(visit)
    return sorted(names)


def _table_layout(path: Path, group: h5py.Group, name: str) -> List[Tuple[str, h5py.Dataset, str]]:
    """Checks a table group; returns (column, dataset, units) in the `columns` order."""
    where = f"table /{name}"
    listed = _text_attr(path, group, "columns", where)
    columns = listed.split(",") if listed else []
    if any(not c for c in columns):
        raise DlcarbonFormatError(path, f"{where}: 'columns' attribute {listed!r} has an empty name")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise DlcarbonFormatError(path, f"{where}: 'columns' names {', '.join(duplicates)} more than once")

    layout = []
    for column in columns:
        if column not in group:
            raise DlcarbonFormatError(
                path, f"{where}: column '{column}' is listed in 'columns' but has no dataset"
            )
        ds = group[column]
        if not isinstance(ds, h5py.Dataset):
            raise DlcarbonFormatError(path, f"{where}: column '{column}' should be a dataset, not a group")
        if ds.ndim != 1:
            raise DlcarbonFormatError(
                path, f"{where}: column '{column}' should be 1-D, has shape {ds.shape}"
            )
        units = _text_attr(path, ds, "units", f"{where}, column '{column}'")
        layout.append((column, ds, units))

    if layout:
        first, first_ds, _ = layout[0]
        rows = first_ds.shape[0]
        differing = [f"'{c}' has {ds.shape[0]}" for c, ds, _ in layout if ds.shape[0] != rows]
        if differing:
            raise DlcarbonFormatError(
                path,
                f"{where}: columns of unequal length: '{first}' has {rows} rows but "
                + ", ".join(differing)
                + " (every column of a table must have the same length)",
            )
    return layout


def _read_column(path: Path, name: str, column: str, ds: h5py.Dataset) -> np.ndarray:
    if h5py.check_string_dtype(ds.dtype) is not None:
        try:
            return np.asarray(ds.asstr()[()], dtype=object)
        except UnicodeDecodeError as e:
            raise DlcarbonFormatError(
                path, f"table /{name}: column '{column}' is not valid UTF-8 ({e})"
            ) from None
    return ds[()]


class Run:
    """One dlcarbon output file: root attributes, scenario texts, and its tables.

    The attributes and scenario texts are read by open_run; tables are read on demand by
    table(), which opens the file again (no file handle is kept open between calls).
    """

    def __init__(self, path: Path, attrs: Dict[str, Any], scenario_given: str,
                 scenario_resolved: str, tables: List[str]):
        self.path = path
        self.attrs = attrs
        self.scenario_given = scenario_given
        self.scenario_resolved = scenario_resolved
        self.tables = tables

    @property
    def format_version(self) -> int:
        return int(self.attrs["format_version"])

    @property
    def scenario_name(self) -> str:
        return str(self.attrs.get("scenario_name", ""))

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, scenario_name={self.scenario_name!r}, tables={self.tables!r})"

    def table(self, name: str) -> pd.DataFrame:
        """The table group `name` (e.g. "summary/training") as a DataFrame.

        Columns follow the group's `columns` attribute; text is str; numbers keep their HDF5
        type (float64 with NaN for "not given", int64 for counts). df.attrs["units"] maps each
        column to its units string ("" for text), df.attrs["table"] is the name and
        df.attrs["source"] the file.
        """
        key = name.strip("/")
        if key not in self.tables:
            listed = ", ".join(self.tables) or "none"
            raise DlcarbonFormatError(self.path, f"no table '{key}' (tables in this file: {listed})")
        with _reading(self.path), _open(self.path) as f:
            if key not in f or not isinstance(f[key], h5py.Group):
                raise DlcarbonFormatError(self.path, f"table '{key}' is no longer in the file")
            layout = _table_layout(self.path, f[key], key)
            data = {column: _read_column(self.path, key, column, ds) for column, ds, _ in layout}
            units = {column: u for column, _, u in layout}
        df = pd.DataFrame(data, columns=[column for column, _, _ in layout])
        df.attrs["units"] = units
        df.attrs["table"] = key
        df.attrs["source"] = str(self.path)
        return df


@contextlib.contextmanager
def _reading(path: Path):
    """Turns what HDF5 raises on a damaged file (a bad object header, a chunk it cannot read, a
    link it cannot follow) into DlcarbonFormatError naming the file."""
    try:
        yield
    except DlcarbonFormatError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError) as e:
        raise DlcarbonFormatError(path, f"damaged HDF5 file, cannot read it ({type(e).__name__}: {e})") from None


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise DlcarbonFormatError(path, "no such file")
    if path.is_dir():
        raise DlcarbonFormatError(path, "is a directory, not an HDF5 file")
    try:
        is_hdf5 = h5py.is_hdf5(str(path))
    except OSError as e:
        raise DlcarbonFormatError(path, f"cannot read the file ({e})") from None
    if not is_hdf5:
        raise DlcarbonFormatError(path, "not an HDF5 file (no HDF5 signature)")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DlcarbonFormatError(path, f"cannot open as HDF5 ({e})") from None


def open_run(path: PathLike) -> Run:
    """Opens and checks a dlcarbon output file; raises DlcarbonFormatError if it is not one.

    Checks: the file exists and is HDF5, format_version is a supported integer, /scenario/given
    and /scenario/resolved are string scalars, and every table (a group with a `columns`
    attribute) lists datasets that exist, are 1-D, have a `units` attribute and one length.
    """
    p = Path(path)
    with _reading(p), _open(p) as f:
        _check_format_version(p, f)
        attrs = {key: _plain(value) for key, value in f.attrs.items()}
        given = _read_text_dataset(p, f, "scenario/given")
        resolved = _read_text_dataset(p, f, "scenario/resolved")
        tables = _find_tables(f)
        for name in tables:
            _table_layout(p, f[name], name)
    return Run(p, attrs, given, resolved, tables)
