"""The paper's qualitative claims, each checked on our numbers: holds, does not hold, or inconclusive.

A claim is a conjunction of pairwise relations between strategies on one metric. Each relation is
decided from :func:`hybridir.experiment.statistics.seed_query_test` (seeds and questions random,
Satterthwaite degrees of freedom) at level 0.05, with margins fixed here before any result is read:

- ``>``: holds where the difference is positive and significant after Holm's correction over the
  strict relations of the direction; does not hold where it is significantly negative, or where the
  two are shown equivalent within the margin; inconclusive otherwise.
- ``≥`` (non-inferiority): holds where a is shown not worse than b by more than the margin (one-sided
  test); does not hold where a is shown worse by more than the margin; inconclusive otherwise.
- ``≈`` (equivalence, TOST): holds where the difference is shown inside ± the margin; does not hold
  where a difference is significant and equivalence is not shown; inconclusive otherwise.

A claim holds when all its relations hold, does not hold when one does not, and is inconclusive
otherwise. The paper's "≫" (rank distance of X-X-mono over X-Y) is checked as ``>``; the ratio is shown.
Margins: :data:`MAP_MARGIN` on mAP; rank distance relative to b's mean (:data:`RANK_DISTANCE_MARGIN`),
and on its robust summary (the geometric mean, tested on each query's log rank distance) log(1 + that).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pandas as pd

from hybridir.experiment.report import STRATEGY_NAMES, Experiment, parse_run, question_units, seed_runs
from hybridir.experiment.runner import ZERO_SHOT
from hybridir.experiment.statistics import holm, paired_permutation_p, seed_query_test

LEVEL = 0.05
MAP_MARGIN = 0.005  # mAP: the difference below which two strategies count as equal
RANK_DISTANCE_MARGIN = 0.02  # rank distance: relative to the reference strategy's mean
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
# BEIR after training: does a strategy keep zero-shot retrieval as well as another? Non-inferiority of Hybrid
# on nDCG@10, with the mAP margin (the same 0-1 scale), per-query pairs over the dataset's test queries.
BEIR_RELATIONS = (("hybrid", "≥", "mono"), ("hybrid", "≥", "cross"), ("hybrid", "≥", "standard"))


class Relation(NamedTuple):
    setting: str  # mono | cross | multi | average (mean of a query's three mAPs)
    metric: str  # map | rank_distance | log_rank_distance (the geometric mean's test)
    a: str  # strategy
    relation: str  # > | ≥ | ≈
    b: str


class Claim(NamedTuple):
    text: str
    relations: tuple[Relation, ...]


def _relations(setting: str, metric: str, *triples: tuple[str, str, str]) -> tuple[Relation, ...]:
    return tuple(Relation(setting, metric, a, relation, b) for a, relation, b in triples)


CLAIMS = (
    Claim("Mo.: Hybrid ≥ X-X-mono > X-Y", _relations("mono", "map", ("hybrid", "≥", "mono"), ("mono", ">", "cross"))),
    Claim("Cr.: Hybrid ≈ X-Y > X-X-mono", _relations("cross", "map", ("hybrid", "≈", "cross"), ("cross", ">", "mono"))),
    Claim("Mul.: Hybrid ≈ X-Y > X-X-mono", _relations("multi", "map", ("hybrid", "≈", "cross"),
                                                       ("cross", ">", "mono"))),
    Claim("Rank distance: X-X-mono ≫ X-Y ≈ Hybrid", _relations("multi", "rank_distance", ("mono", ">", "cross"),
                                                               ("cross", "≈", "hybrid"))),
    Claim("Rank distance, geometric mean: X-X-mono > X-Y ≈ Hybrid",
          _relations("multi", "log_rank_distance", ("mono", ">", "cross"), ("cross", "≈", "hybrid"))),
    Claim("Average of Mo./Cr./Mul. mAP: Hybrid best or tied", _relations("average", "map", ("hybrid", "≥", "mono"),
                                                                         ("hybrid", "≥", "cross"))),
    # The baseline the question implies: standard multilingual fine-tuning (X-X, languages mixed in a batch).
    Claim("Against standard fine-tuning: Hybrid ≥ X-X on Mo., > on Cr. and Mul.",
          _relations("mono", "map", ("hybrid", "≥", "standard")) + _relations("cross", "map", ("hybrid", ">", "standard"))
          + _relations("multi", "map", ("hybrid", ">", "standard"))),
    Claim("Against standard fine-tuning: X-X's rank distance > Hybrid's",
          _relations("multi", "rank_distance", ("standard", ">", "hybrid"))),
)


def margin(relation: Relation, reference_mean: float) -> float:
    """The margin of ``≥`` and ``≈`` (and of "shown equal" for ``>``), in the tested quantity's units."""
    if relation.metric == "map":
        return MAP_MARGIN
    if relation.metric == "rank_distance":
        return RANK_DISTANCE_MARGIN * reference_mean
    return math.log1p(RANK_DISTANCE_MARGIN)


def decide(relation: str, difference: float, p: float, p_equivalent: float, p_not_below: float,
           p_worse: float) -> str:
    """One relation's mark from its test: ``p`` two-sided (Holm-adjusted for ``>``), ``p_equivalent`` the TOST
    p, ``p_not_below`` the non-inferiority p (a > b − margin), ``p_worse`` the p of a < b − margin."""
    if math.isnan(p):
        return INCONCLUSIVE  # one seed of a strategy: its seed variance is unknown
    if relation == ">":
        if p < LEVEL:
            return HOLDS if difference > 0 else FAILS
        return FAILS if p_equivalent < LEVEL else INCONCLUSIVE
    if relation == "≥":
        if p_not_below < LEVEL:
            return HOLDS
        return FAILS if p_worse < LEVEL else INCONCLUSIVE
    if relation == "≈":
        if p_equivalent < LEVEL:
            return HOLDS
        return FAILS if p < LEVEL else INCONCLUSIVE
    raise ValueError(f"unknown relation {relation!r}; use >, ≥ or ≈")


def claim_mark(marks: list[str]) -> str:
    if FAILS in marks:
        return FAILS
    return HOLDS if all(mark == HOLDS for mark in marks) else INCONCLUSIVE


def check_claims(experiment: Experiment, direction: str, claims: tuple[Claim, ...] = CLAIMS,
                 n_resamples: int = 10_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims, relations): each claim with its mark, and every relation behind it with the two strategies'
    means of the tested quantity (``mean a``, ``mean b``), the difference, its 95% interval (``low``, ``high``
    and as text), the margin, the two-sided p (and Holm's for ``>``), the TOST and non-inferiority p, the
    usual paired test over questions for comparison (``n_resamples`` permutations), and the seeds. A claim
    whose strategies the direction did not train is left out."""
    trained = set(experiment.runs(direction).strategy)
    claims = [claim for claim in claims if all({r.a, r.b} <= trained for r in claim.relations)]
    if not claims:  # e.g. a direction with only its zero-shot evaluation so far
        return pd.DataFrame(columns=["claim", "verdict"]), pd.DataFrame()
    rows = []
    for claim in claims:
        for relation in claim.relations:
            a_runs, b_runs = seed_runs(experiment, direction, relation.a), seed_runs(experiment, direction, relation.b)
            units, clusters = question_units(experiment, direction, a_runs + b_runs, relation.setting, relation.metric)
            a, b = units[:len(a_runs)], units[len(a_runs):]
            test = seed_query_test(a, b, clusters)
            width = margin(relation, float(b.mean()))
            low, high = test.interval()
            rows.append({"claim": claim.text, "relation": relation,
                         "comparison": f"{STRATEGY_NAMES[relation.a]} {relation.relation} {STRATEGY_NAMES[relation.b]}",
                         "setting": relation.setting, "metric": relation.metric, "mean a": float(a.mean()),
                         "mean b": float(b.mean()), "difference": test.difference, "low": low, "high": high,
                         "95% interval": f"[{low:.4f}, {high:.4f}]", "margin": width, "df": test.df, "p": test.p,
                         "p equivalent": test.p_equivalent(width), "p not below": test.p_not_below(width),
                         "p worse": test.p_worse(width),
                         "p (questions only)": paired_permutation_p(a, b, n_resamples),
                         "ratio": float(a.mean() / b.mean()) if relation.metric == "rank_distance" else float("nan"),
                         "seeds": f"{len(a_runs)} vs {len(b_runs)}"})
    table = pd.DataFrame(rows)
    strict = [i for i, row in enumerate(rows) if row["relation"].relation == ">"]
    table["p Holm"] = float("nan")
    table.loc[strict, "p Holm"] = holm(table.loc[strict, "p"].tolist())
    table["mark"] = [decide(row.relation.relation, row.difference, row["p Holm"] if row.relation.relation == ">"
                            else row.p, row["p equivalent"], row["p not below"], row["p worse"])
                     for _, row in table.iterrows()]
    verdicts = pd.DataFrame([{"claim": claim.text,
                              "verdict": claim_mark(table[table.claim == claim.text].mark.tolist())}
                             for claim in claims])
    return verdicts, table.drop(columns="relation")


# How a shorter experiment's mark on a relation stands against a longer one's (compare_marks' "outcome").
ALIKE, CANNOT_DECIDE, OTHERWISE, BEYOND, NEITHER, NOT_RUN = (
    "decided alike", "inconclusive where decided", "decided otherwise", "decided where inconclusive",
    "inconclusive in both", "not run")


def compare_marks(shorter: pd.DataFrame, longer: pd.DataFrame) -> pd.DataFrame:
    """Each relation of ``longer`` (check_claims' relations of, e.g., the conclusive experiment) with its mark in
    ``shorter`` (those of, e.g., the 2-hour cpu preset, same direction) and the outcome: what the shorter
    experiment can and cannot decide. A relation whose strategies the shorter one did not train is "not run"."""
    key = ["claim", "comparison", "setting", "metric"]
    columns = key + ["mark", "seeds"]  # reindex: a shorter experiment that tested nothing has no columns
    merged = longer[columns].merge(shorter.reindex(columns=columns), on=key, how="left",
                                   suffixes=(" longer", " shorter"))

    def outcome(row: pd.Series) -> str:
        short, long = row["mark shorter"], row["mark longer"]
        if pd.isna(short):
            return NOT_RUN
        if short == long:
            return NEITHER if long == INCONCLUSIVE else ALIKE
        if short == INCONCLUSIVE:
            return CANNOT_DECIDE
        return BEYOND if long == INCONCLUSIVE else OTHERWISE

    return merged.assign(outcome=merged.apply(outcome, axis=1))


def check_beir(experiment: Experiment, dataset: str = "scifact", metric: str = "ndcg@10",
               relations: tuple[tuple[str, str, str], ...] = BEIR_RELATIONS) -> pd.DataFrame:
    """Each BEIR relation decided as the LAReQA ones are: (seeds × queries) matrices of ``metric`` from the
    models' per-query files, seeds and queries random (:func:`seed_query_test`), the margin
    :data:`MAP_MARGIN`. Queries are independent here (no shared paragraphs). A relation whose strategies have
    no BEIR run is left out; one seed of a strategy leaves it inconclusive."""
    runs: dict[str, list[str]] = {}
    for run in experiment.beir_runs(dataset):
        info = parse_run(run)
        if info["strategy"] != ZERO_SHOT and not info["sweep"] and not info["stratified"]:
            runs.setdefault(info["strategy"], []).append(run)
    rows = []
    for a, relation, b in relations:
        if a not in runs or b not in runs:
            continue
        matrix = pd.concat([experiment.beir_per_query(dataset, run).set_index("qid")[metric].rename(run)
                            for run in runs[a] + runs[b]], axis=1, join="inner")
        values = matrix.T.to_numpy()
        test = seed_query_test(values[:len(runs[a])], values[len(runs[a]):])
        low, high = test.interval()
        rows.append({"comparison": f"{STRATEGY_NAMES[a]} {relation} {STRATEGY_NAMES[b]}", "dataset": dataset,
                     "metric": metric, "difference": test.difference, "low": low, "high": high,
                     "95% interval": f"[{low:.4f}, {high:.4f}]",
                     "margin": MAP_MARGIN, "p": test.p, "p not below": test.p_not_below(MAP_MARGIN),
                     "p worse": test.p_worse(MAP_MARGIN),
                     "mark": decide(relation, test.difference, test.p, test.p_equivalent(MAP_MARGIN),
                                    test.p_not_below(MAP_MARGIN), test.p_worse(MAP_MARGIN)),
                     "queries": len(matrix), "seeds": f"{len(runs[a])} vs {len(runs[b])}"})
    return pd.DataFrame(rows)
