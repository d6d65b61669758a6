"""Lets `pytest analysis` (from the repository root) import dlcarbon_analysis."""

import sys
from pathlib import Path

ANALYSIS_DIR = Path(__file__).resolve().parent
if str(ANALYSIS_DIR) not in sys.path:
    sys.path.insert(0, str(ANALYSIS_DIR))
