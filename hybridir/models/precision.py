"""Compute precision: what ``--precision`` means on this machine.

``fp32`` is exact; ``bf16`` runs the encoder's weights in bfloat16, fast where the hardware has
bf16 matrix units (Intel AMX on CPUs, Ampere and later GPUs); ``fp16`` is for GPUs only (CPUs
have no fast fp16 matmul); ``auto`` picks bf16 where the hardware has such units and fp32
elsewhere. Embeddings are returned as float32 whatever the compute precision, so the metrics
stay exact; ``bench/bench_precision.py`` measures what bf16 changes in the numbers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

RESOLVED_PRECISIONS = ("fp32", "bf16", "fp16")  # what a model runs in; "auto" resolves to one of them
PRECISIONS = (*RESOLVED_PRECISIONS, "auto")
# Evaluation's default: bf16 weights encoded XQuAD-R 2.33-2.38x faster on an AMX CPU with every Mean-row mAP within
# 0.0007 and rank distance within 0.31% of fp32 (results/bench/bench_precision.txt, book/precision.md).
DEFAULT_PRECISION = "auto"


def resolve_precision(precision: str) -> str:
    """``auto`` → ``bf16`` or ``fp32`` for this machine; other values are checked and returned."""
    import torch

    check_precision(precision)
    gpu = torch.cuda.is_available()
    if precision == "auto":
        # Emulated bf16 (pre-Ampere GPUs) is slower than fp32: only native support counts.
        fast_bf16 = torch.cuda.is_bf16_supported(including_emulation=False) if gpu else cpu_has_amx()
        return "bf16" if fast_bf16 else "fp32"
    if precision == "fp16" and not gpu:
        raise ValueError("fp16 needs a GPU (CPUs have no fast fp16 matmul); use --precision bf16 or fp32")
    return precision


def check_precision(precision: str) -> None:
    """The name alone, without importing torch (configs are checked at the CLI's start-up)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")


def torch_dtype(precision: str) -> torch.dtype:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@lru_cache(maxsize=2)
def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU has Intel AMX bf16 tiles (Linux: the ``amx_bf16`` flag in /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and "amx_bf16" in line.split() for line in text.splitlines())
