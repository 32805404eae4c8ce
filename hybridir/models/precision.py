"""Compute precision: what ``--precision`` means on this machine.

``fp32`` is exact; ``bf16`` runs the encoder's weights in bfloat16, fast where the hardware has
native bf16 matrix instructions (on CPUs Intel AMX or AVX512-BF16, on GPUs Ampere and later);
``fp16`` is for GPUs only (CPUs have no fast fp16 matmul); ``auto`` picks bf16 where the hardware
has such instructions and fp32 elsewhere. Forcing bf16 where it is emulated warns with the
slowdown measured on the spot. Embeddings are returned as float32 whatever the compute precision,
so the metrics stay exact; ``bench/bench_precision.py`` measures what bf16 changes in the numbers.
"""

from __future__ import annotations

import time
import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from hybridir.provenance import cpu_flags

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
    # Emulated bf16 (pre-Ampere GPUs, CPUs without bf16 instructions) is slower than fp32: only native counts.
    native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False) if gpu else cpu_has_native_bf16()
    if precision == "auto":
        return "bf16" if native_bf16 else "fp32"
    if precision == "fp16" and not gpu:
        raise ValueError("fp16 needs a GPU (CPUs have no fast fp16 matmul); use --precision bf16 or fp32")
    if precision == "bf16" and not native_bf16:
        _warn_emulated_bf16(gpu)
    return precision


def check_precision(precision: str) -> None:
    """The name alone, without importing torch (configs are checked at the CLI's start-up)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")


def torch_dtype(precision: str) -> torch.dtype:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


# CPU flags of native bf16 matrix instructions. 2048² matmul, bf16 over fp32, 2 cores: 4.2x on a Xeon with AMX,
# 2.4x on an EPYC with AVX512-BF16 (results/bench/bench_precision*.txt); an AVX2-only EPYC emulates bf16 at
# 0.3 GFLOP/s against 175 in fp32.
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache(maxsize=2)
def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU has bf16 matrix instructions (Linux: AMX tiles or AVX512-BF16 in /proc/cpuinfo)."""
    return bool(cpu_flags(cpuinfo) & set(NATIVE_BF16_FLAGS))


@lru_cache(maxsize=1)
def _warn_emulated_bf16(gpu: bool) -> None:
    """One line, once per process: how much slower a bf16 matmul runs here than an fp32 one."""
    import torch

    device = "cuda" if gpu else "cpu"
    seconds = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = (torch.randn(256, 256, device=device, dtype=dtype) for _ in range(2))
        a @ b  # warm-up
        if gpu:
            torch.cuda.synchronize()
        began = time.perf_counter()
        a @ b
        if gpu:
            torch.cuda.synchronize()
        seconds[dtype] = time.perf_counter() - began
    where = "this GPU" if gpu else "this CPU (no AMX or AVX512-BF16 in its flags)"
    warnings.warn(f"hybridir: bf16 is emulated on {where}: a 256² matmul took "
                  f"{seconds[torch.bfloat16] / seconds[torch.float32]:.0f}x the fp32 time; use --precision auto "
                  "or fp32", stacklevel=3)
