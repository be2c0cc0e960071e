"""The code location: `dagster ... -m pd_pipeline.definitions` (or `-m pd_pipeline`), `dg`.

The settings are read first: a wrong one stops the load with one line naming it."""

import sys
import warnings

from pd_pipeline import settings
from pd_pipeline.defs import build_defs

try:
    defs = build_defs(settings.load())
except settings.SettingsError as e:
    sys.exit(f"pd_pipeline: {e}")
for note in settings.misspelt():
    warnings.warn(note, stacklevel=1)
