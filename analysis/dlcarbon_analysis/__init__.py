"""dlcarbon_analysis: read dlcarbon output files (HDF5) into pandas, convert units, report.

    from dlcarbon_analysis import open_run, convert
    run = open_run("gpt3.h5")
    jobs = run.table("summary/training")          # pandas.DataFrame, SI units
    convert(jobs["facility_energy"], "J", "MWh")  # friendly units

The file layout is docs/output-format.md (format_version 1).
"""

from .load import FORMAT_VERSION, SUPPORTED_FORMAT_VERSIONS, DlcarbonFormatError, Run, open_run
from .units import UnitError, convert, dimension, known_units

__version__ = "0.1.0"

__all__ = [
    "FORMAT_VERSION",
    "SUPPORTED_FORMAT_VERSIONS",
    "DlcarbonFormatError",
    "Run",
    "open_run",
    "UnitError",
    "convert",
    "dimension",
    "known_units",
    "training_summary",
    "inference_summary",
    "totals_summary",
    "deployment_summary",
    "lifecycle_series",
    "sweep_points",
    "sweep_parameters",
    "step_breakdown",
    "stage_loads",
    "job_overheads",
    "op_breakdown",
]


def __getattr__(name):
    # The report module is imported on first use only, so that
    # `python -m dlcarbon_analysis.report` does not find it already imported.
    if name in ("training_summary", "inference_summary", "totals_summary", "deployment_summary", "lifecycle_series",
                "sweep_points", "sweep_parameters", "step_breakdown", "stage_loads", "job_overheads", "op_breakdown"):
        from . import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
