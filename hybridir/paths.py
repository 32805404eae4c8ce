"""Where hybridir reads data and keeps its caches.

Two environment variables steer everything:

- ``HYBRIDIR_DATA_DIR``: a local copy of the public data laid out as ``../shared/data``
  (``lareqa/xquad-r/<lang>.json``, ``beir/scifact/…``, …). Unset, loaders download the
  same files from their pinned public commits into the cache (see :mod:`hybridir.data.sources`).
- ``HYBRIDIR_CACHE_DIR``: downloads, the converted offline model and embedding caches.
  Defaults to the user cache directory (``~/.cache/hybridir`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DATA_DIR_ENV = "HYBRIDIR_DATA_DIR"
CACHE_DIR_ENV = "HYBRIDIR_CACHE_DIR"


def data_dir() -> Path | None:
    """The local data directory, or ``None`` when data should be downloaded."""
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{DATA_DIR_ENV}={value} is not a directory; point it at a copy of the data "
                                "(e.g. ../shared/data) or unset it to download")
    return path


def cache_dir() -> Path:
    """The cache root, created on first use."""
    value = os.environ.get(CACHE_DIR_ENV)
    path = Path(value).expanduser() if value else Path(platformdirs.user_cache_dir("hybridir"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def in_repository(relative: str | Path, required: bool = True) -> Path | None:
    """A path given from the repository root (``results/cpu``) as seen from the working folder.

    The notebooks run from the repository root (papermill as a user types it) or from ``notebooks/``
    (Jupyter Book and Colab); an absolute path is taken as it is. A missing path raises, or gives
    ``None`` when not ``required``.
    """
    path = Path(relative).expanduser()
    for candidate in (path,) if path.is_absolute() else (path, Path("..") / path):
        if candidate.exists():
            return candidate
    if required:
        raise FileNotFoundError(f"{relative} is found neither from {Path.cwd()} nor from its parent: run from the "
                                "repository root or its notebooks/ folder, or give an absolute path")
    return None
