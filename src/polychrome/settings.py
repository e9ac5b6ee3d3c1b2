"""The two places polychrome reads from and writes to outside a run directory.

Both are environment variables, read on every call (never at import time), so tests and tools can
point them elsewhere:

- ``POLYCHROME_DATA``: the data root that dataset specs resolve relative paths against
  (default ``../shared/data``, where the project's shared copies live).
- ``POLYCHROME_CACHE``: where derived artefacts are cached (gamut bins, priors, decoded images;
  default ``~/.cache/polychrome``).
"""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    return Path(os.environ.get("POLYCHROME_DATA", "../shared/data")).expanduser()


def cache_dir() -> Path:
    default = Path("~/.cache/polychrome").expanduser()
    path = Path(os.environ.get("POLYCHROME_CACHE", default)).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
