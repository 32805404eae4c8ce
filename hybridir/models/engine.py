"""Encoding engine: what runs the encoder's transformer when embeddings are computed.

``torch`` runs it eagerly in PyTorch, in the weights' precision (the reference, with ``fp32``).
``openvino`` converts the same PyTorch module once per load with OpenVINO's own converter and runs it
on the CPU; its ``bf16`` keeps the weights in fp32 and computes the matrix products in bf16 where the
CPU has bf16 instructions (OpenVINO's inference-precision hint), so it is both faster and closer to
fp32 than torch's bf16 weights. Tokenisation, pooling and normalisation stay sentence-transformers'.
``auto`` picks OpenVINO for bf16 on a CPU-only machine and torch otherwise: fp32 stays the exact
reference (OpenVINO's fp32 gained little, ``results/bench/bench_engines.*.txt``), GPUs run torch.
``bench/bench_engines.py`` measures each engine's speed and what it changes in the numbers.

sentence-transformers' own ``backend="openvino"`` needs optimum-intel, which pins other
transformers and torch releases than this project's; OpenVINO's converter needs neither.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

RESOLVED_ENGINES = ("torch", "openvino")  # what an encoder runs on; "auto" resolves to one of them
ENGINES = (*RESOLVED_ENGINES, "auto")
DEFAULT_ENGINE = "auto"
OPENVINO_PRECISIONS = ("fp32", "bf16")  # fp16 is a GPU precision


def check_engine(engine: str) -> None:
    """The name alone, without importing torch (configs are checked at the CLI's start-up)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")


def resolve_engine(engine: str, precision: str) -> str:
    """``auto`` → ``openvino`` or ``torch`` for this machine and a resolved ``precision``; others are checked."""
    import torch

    check_engine(engine)
    on_gpu = torch.cuda.is_available()
    if engine == "auto":
        if on_gpu or precision != "bf16":  # fp32 stays torch eager: the exact reference
            return "torch"
        if not openvino_installed():
            _warn_no_openvino()
            return "torch"
        return "openvino"
    if engine == "openvino":
        if precision not in OPENVINO_PRECISIONS:
            raise ValueError(f"--engine openvino runs fp32 or bf16, not {precision}; use --engine torch for fp16")
        if not openvino_installed():
            raise ImportError("--engine openvino needs the openvino package: pip install openvino (or use "
                              "--engine torch)")
    return engine


@lru_cache(maxsize=1)
def _warn_no_openvino() -> None:
    warnings.warn("hybridir: openvino is not installed, so --engine auto encodes with torch (slower on a CPU); "
                  "pip install openvino", stacklevel=3)


@lru_cache(maxsize=1)
def openvino_installed() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True
