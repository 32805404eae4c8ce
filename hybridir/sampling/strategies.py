"""The strategy names and their settings, checked without importing torch (the CLI validates early)."""

from __future__ import annotations

import math

# standard: same-language pairs of every language shuffled into the same batches (LAReQA's X-X, what
# sentence-transformers' own sampler does over multilingual pairs): the baseline the other three are set against.
STRATEGIES = ("mono", "cross", "hybrid", "standard")
DEFAULT_ALPHA = 0.5  # the paper's footnote 1: α = β = 0.5 balanced best
# How hybrid decides a batch's kind: a coin per batch with P(mono) = α (the paper), or stratified: each epoch
# holds exactly round(α × batches) mono batches in a random order, so seeds differ less in their mono share.
MONO_DRAWS = ("coin", "stratified")
# How an X-Y pair's two languages are drawn among the item's own: uniformly (the paper's definition
# read literally), or weighted ∝ 1 / (items having the language), so a language every item has
# (English in MLQA-R) stops taking most sides.
CROSS_PAIRS = ("uniform", "balanced")


def check_cross_pairs(cross_pairs: str) -> None:
    if cross_pairs not in CROSS_PAIRS:
        raise ValueError(f"unknown cross_pairs {cross_pairs!r}; choose one of: {', '.join(CROSS_PAIRS)}")


def check_mono_draw(mono_draw: str, strategy: str) -> None:
    if mono_draw not in MONO_DRAWS:
        raise ValueError(f"unknown mono_draw {mono_draw!r}; choose one of: {', '.join(MONO_DRAWS)}")
    if mono_draw != "coin" and strategy != "hybrid":
        raise ValueError(f"mono_draw {mono_draw!r} applies to the hybrid strategy only (got strategy {strategy!r})")


def check_strategy(strategy: str, alpha: float | None, temperature: float) -> float:
    """Validate the strategy settings; return the probability of a mono batch (0 for standard: its batches
    are X-X in mixed languages, neither mono nor X-Y)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
    if alpha is not None and strategy != "hybrid":
        raise ValueError(f"alpha applies to the hybrid strategy only; drop it or use strategy 'hybrid' "
                         f"(got strategy {strategy!r}, alpha {alpha})")
    if strategy == "hybrid":
        alpha = DEFAULT_ALPHA if alpha is None else alpha
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise ValueError(f"alpha is the probability of a mono batch and must lie in [0, 1], got {alpha!r}")
    finite = isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and math.isfinite(temperature)
    if not (finite and temperature > 0):
        raise ValueError(f"temperature must be a positive number (1 = proportional to source size), "
                         f"got {temperature!r}")
    return float(alpha) if strategy == "hybrid" else {"mono": 1.0, "cross": 0.0, "standard": 0.0}[strategy]


def check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size must be an integer of at least 2 (in-batch negatives need two pairs), "
                         f"got {batch_size!r}")
