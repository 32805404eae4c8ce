"""The paper's qualitative claims, each checked on our numbers: holds / does not hold, with p.

A claim is a conjunction of pairwise relations between strategies on one metric, each decided from
:func:`hybridir.experiment.statistics.compare` at level 0.05 (the seeds × queries bootstrap):

- ``>``: the difference is positive and significant;
- ``≥``: the difference is not significantly negative;
- ``≈``: the difference is not significant. This is the absence of evidence of a difference, not a
  proof of equality; the interval beside it says how large a difference the data still allow.

The paper's "≫" (rank distance of X-X-mono over X-Y) is checked as ``>``; the ratio is shown.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from hybridir.experiment.report import STRATEGY_NAMES, Experiment, per_id_matrix, seed_runs
from hybridir.experiment.statistics import compare

LEVEL = 0.05


class Relation(NamedTuple):
    setting: str  # mono | cross | multi | average (mean of a query's three mAPs)
    metric: str  # map | rank_distance
    a: str  # strategy
    relation: str  # > | ≥ | ≈
    b: str


class Claim(NamedTuple):
    text: str
    relations: tuple[Relation, ...]


CLAIMS = (
    Claim("Mo.: Hybrid ≥ X-X-mono > X-Y", (Relation("mono", "map", "hybrid", "≥", "mono"),
                                           Relation("mono", "map", "mono", ">", "cross"))),
    Claim("Cr.: Hybrid ≈ X-Y > X-X-mono", (Relation("cross", "map", "hybrid", "≈", "cross"),
                                           Relation("cross", "map", "cross", ">", "mono"))),
    Claim("Mul.: Hybrid ≈ X-Y > X-X-mono", (Relation("multi", "map", "hybrid", "≈", "cross"),
                                            Relation("multi", "map", "cross", ">", "mono"))),
    Claim("Rank distance: X-X-mono ≫ X-Y ≈ Hybrid", (Relation("multi", "rank_distance", "mono", ">", "cross"),
                                                     Relation("multi", "rank_distance", "cross", "≈", "hybrid"))),
    Claim("Average of Mo./Cr./Mul. mAP: Hybrid best or tied", (Relation("average", "map", "hybrid", "≥", "mono"),
                                                               Relation("average", "map", "hybrid", "≥", "cross"))),
)


def decide(relation: str, difference: float, p: float) -> bool:
    significant = p < LEVEL
    if relation == ">":
        return difference > 0 and significant
    if relation == "≥":
        return not (difference < 0 and significant)
    if relation == "≈":
        return not significant
    raise ValueError(f"unknown relation {relation!r}; use >, ≥ or ≈")


def check_claims(experiment: Experiment, direction: str, claims: tuple[Claim, ...] = CLAIMS,
                 n_resamples: int = 10_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims, relations): each claim with holds / does not hold, and every relation behind it
    with the difference, its 95% interval, the seeds × queries p and the queries-only p."""
    rows, verdicts = [], []
    for claim in claims:
        holds = []
        for relation in claim.relations:
            a_runs, b_runs = seed_runs(experiment, direction, relation.a), seed_runs(experiment, direction, relation.b)
            matrix, _ = per_id_matrix(experiment, direction, a_runs + b_runs, relation.setting, relation.metric)
            result = compare(matrix[:len(a_runs)], matrix[len(a_runs):], n_resamples=n_resamples)
            held = decide(relation.relation, result.difference, result.p)
            holds.append(held)
            rows.append({"claim": claim.text,
                         "relation": f"{STRATEGY_NAMES[relation.a]} {relation.relation} {STRATEGY_NAMES[relation.b]}",
                         "setting": relation.setting, "metric": relation.metric,
                         "difference": result.difference, "95% interval": f"[{result.low:.4f}, {result.high:.4f}]",
                         "p (seeds × queries)": result.p, "p (queries only)": result.p_queries,
                         "seeds": f"{len(a_runs)} vs {len(b_runs)}", "holds": held})
        verdicts.append({"claim": claim.text, "holds": all(holds),
                         "verdict": "holds" if all(holds) else "does not hold"})
    return pd.DataFrame(verdicts), pd.DataFrame(rows)
