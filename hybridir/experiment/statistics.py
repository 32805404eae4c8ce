"""Significance of a difference between two training strategies, with seeds as a source of noise.

Each strategy gives a (seeds × question ids) matrix of one metric: every seed's model, every question
id of the evaluation set (its rows weighted as the table's Mean row weighs them, so the 11 translations
of one XQuAD-R question count as one unit, not 11 independent ones; see
:func:`hybridir.experiment.report.question_units`). Two tests:

- :func:`seed_query_test` (the one the claims use): a linear mixed model with seeds (a variance per
  strategy) and questions (clustered by paragraph) random, in closed form for this balanced design, with
  Satterthwaite degrees of freedom; equivalence (TOST) and non-inferiority read its interval.
- :func:`paired_permutation_p`: scipy's paired randomisation test over question ids on the
  seed-averaged values: the usual IR test, shown beside it to make the difference visible (it treats one
  set of models as the strategy and ignores the seed-to-seed noise of training).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats


def _check(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the two strategies were evaluated on different queries ({a.shape[1]} and {b.shape[1]} "
                         "question ids); compare runs on the same evaluation subset")
    if a.shape[1] < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("each strategy needs finite values for at least 2 question ids")
    return a, b


def paired_permutation_p(a: np.ndarray, b: np.ndarray, n_resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p of scipy's paired randomisation test over queries, on seed-averaged values."""
    a, b = _check(a, b)
    result = stats.permutation_test((a.mean(axis=0), b.mean(axis=0)), lambda x, y: np.mean(x - y),
                                    permutation_type="samples", n_resamples=n_resamples,
                                    alternative="two-sided", rng=np.random.default_rng(seed))
    return float(result.pvalue)


# ---------------------------------------------------------------- the verdicts' test: seeds and questions random


class SeedQueryTest(NamedTuple):
    """mean(a) − mean(b) under a linear mixed model with random seeds and random questions (see
    :func:`seed_query_test`)."""

    difference: float
    se: float  # its standard error: seeds of a, seeds of b, questions (clustered), residual correction
    df: float  # Satterthwaite degrees of freedom
    p: float  # two-sided, H0: no difference; NaN with one seed of a strategy (its seed variance is unknown)

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        half = stats.t.ppf(0.5 + confidence / 2, self.df) * self.se
        return self.difference - half, self.difference + half

    def p_equivalent(self, margin: float) -> float:
        """TOST: the larger of the two one-sided p-values of |difference| < margin (equivalence at 1 − 2·level)."""
        return max(self.p_not_below(margin), self.p_below(margin))

    def p_not_below(self, margin: float) -> float:
        """Non-inferiority: one-sided p of difference > −margin."""
        return self._one_sided(self.difference + margin)

    def p_below(self, margin: float) -> float:
        """One-sided p of difference < margin."""
        return self._one_sided(margin - self.difference)

    def p_worse(self, margin: float) -> float:
        """One-sided p of difference < −margin (a worse than b by more than the margin)."""
        return self._one_sided(-margin - self.difference)

    def _one_sided(self, distance: float) -> float:
        """p of the hypothesis that the true value lies ``distance`` beyond the estimate's side."""
        if self.se == 0:
            return 0.0 if distance > 0 else 1.0
        return float(stats.t.sf(distance / self.se, self.df))


def seed_query_test(a: np.ndarray, b: np.ndarray, clusters: np.ndarray | None = None) -> SeedQueryTest:
    """Test mean(a) − mean(b) for (seeds × questions) matrices, columns aligned, seeds and questions random.

    The model: y[s, q] = μ_strategy + v_s + u_q + w_(strategy, q) + e_(s, q), with the seed effect v's variance
    its own per strategy (seeds of X-X-mono spread 13x more than X-Y's in the cpu preset), questions u and their
    strategy interaction w random and correlated within ``clusters`` (the paragraph: its questions share an
    answer context), e the seed-by-question residual. Every model is evaluated on every question, so the
    design is balanced and the variance of the difference has a closed form (the ANOVA moment estimator,
    REML's own answer away from the boundary):

        Var = s²_a / n_a + s²_b / n_b + V_q − (σ²_a / n_a + σ²_b / n_b) / Q

    s² the variance of a strategy's seed means, V_q the cluster-robust variance of the mean of the seed-averaged
    per-question differences, σ² a strategy's residual variance (counted in both s² and V_q, hence subtracted
    once); degrees of freedom by Satterthwaite's formula over these terms. statsmodels' MixedLM fits the same
    model (a test checks the two agree) but gives z-tests without Satterthwaite or Kenward-Roger degrees of
    freedom, and takes seconds to minutes per fit where the type-I simulation needs thousands.
    """
    a, b = _check(a, b)
    n_a, n_b, queries = a.shape[0], b.shape[0], a.shape[1]
    clusters = np.arange(queries) if clusters is None else np.asarray(clusters)
    if len(clusters) != queries:
        raise ValueError(f"{len(clusters)} cluster labels for {queries} question ids")
    difference = float(a.mean() - b.mean())
    per_question = a.mean(axis=0) - b.mean(axis=0)
    labels, cluster = np.unique(clusters, return_inverse=True)
    n_clusters = len(labels)
    # cluster-robust (CR1) variance of the mean over questions of the per-question differences
    totals = np.bincount(cluster, weights=per_question - per_question.mean(), minlength=n_clusters)
    v_questions = n_clusters / max(n_clusters - 1, 1) * float((totals ** 2).sum()) / queries ** 2
    terms, dfs = [v_questions], [n_clusters - 1]
    if min(n_a, n_b) < 2:
        return SeedQueryTest(difference, float(np.sqrt(v_questions)), float(n_clusters - 1), float("nan"))
    for matrix, n in ((a, n_a), (b, n_b)):
        seed_means, sigma2 = _seed_means_and_residual(matrix)
        terms += [float(seed_means.var(ddof=1)) / n, -sigma2 / (n * queries)]
        dfs += [n - 1, (n - 1) * (queries - 1)]
    variance = sum(terms)
    if variance <= 0:  # no variation at all (identical runs): the difference is exact
        return SeedQueryTest(difference, 0.0, float("inf"), 1.0 if difference == 0 else 0.0)
    df = variance ** 2 / sum(term ** 2 / d for term, d in zip(terms, dfs))
    se = float(np.sqrt(variance))
    p = float(2 * stats.t.sf(abs(difference) / se, df))
    return SeedQueryTest(difference, se, float(df), p)


def _seed_means_and_residual(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """A strategy's (seeds × questions) matrix: each seed's mean, and the seed-by-question residual variance
    (two-way, both main effects removed)."""
    n, queries = matrix.shape
    seed_means = matrix.mean(axis=1)
    residual = matrix - seed_means[:, None] - matrix.mean(axis=0)[None, :] + matrix.mean()
    return seed_means, float((residual ** 2).sum()) / max((n - 1) * (queries - 1), 1)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (statsmodels' ``multipletests``); NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests

    values = np.asarray(p_values, float)
    adjusted = np.full(len(values), np.nan)
    finite = np.isfinite(values)
    if finite.any():
        adjusted[finite] = multipletests(values[finite], method="holm")[1]
    return adjusted.tolist()


def variance_components(a: np.ndarray, b: np.ndarray, clusters: np.ndarray | None = None) -> dict[str, float]:
    """Moment estimates of :func:`seed_query_test`'s model for two strategies (standard deviations): each
    strategy's seed SD, the question SD, the question-by-strategy SD, the residual SD, and the share of the
    question-by-strategy variance between clusters (the rest is within). What the type-I simulation draws from."""
    a, b = _check(a, b)
    queries = a.shape[1]
    clusters = np.arange(queries) if clusters is None else np.asarray(clusters)
    out = {}
    residuals = []
    for name, matrix in (("a", a), ("b", b)):
        n = matrix.shape[0]
        seed_means, sigma2 = _seed_means_and_residual(matrix)
        residuals.append(sigma2)
        seed = float(seed_means.var(ddof=1)) - sigma2 / queries if n > 1 else float("nan")
        out[f"seed_sd_{name}"] = float(np.sqrt(max(seed, 0.0))) if n > 1 else float("nan")
    sigma2 = float(np.mean(residuals))
    means_a, means_b = a.mean(axis=0), b.mean(axis=0)
    n_a, n_b = a.shape[0], b.shape[0]
    # question main effect: the average of the two strategies' per-question means; interaction: half their gap
    shared = (means_a + means_b) / 2
    gap = (means_a - means_b) / 2
    noise = sigma2 * (1 / n_a + 1 / n_b) / 4
    out["question_sd"] = float(np.sqrt(max(shared.var(ddof=1) - noise, 0.0)))
    interaction = max(gap.var(ddof=1) - noise, 0.0)
    out["question_by_strategy_sd"] = float(np.sqrt(interaction))
    cluster = np.unique(clusters, return_inverse=True)[1]
    cluster_means = np.bincount(cluster, weights=gap - gap.mean()) / np.bincount(cluster)
    between = float(np.var(cluster_means[cluster], ddof=1))
    out["between_cluster_share"] = float(min(between / interaction, 1.0)) if interaction > 0 else 0.0
    out["residual_sd"] = float(np.sqrt(sigma2))
    return out


def simulate(components: dict, clusters: np.ndarray, n_a: int, n_b: int, difference: float,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) drawn from :func:`seed_query_test`'s model with ``components`` (those of
    :func:`variance_components`) and a true ``difference``: the simulation that checks the test's size."""
    queries = len(clusters)
    labels, cluster = np.unique(clusters, return_inverse=True)
    share = components["between_cluster_share"]
    interaction = components["question_by_strategy_sd"] * (np.sqrt(share) * rng.standard_normal(len(labels))[cluster]
                                                            + np.sqrt(1 - share) * rng.standard_normal(queries))
    question = components["question_sd"] * rng.standard_normal(queries)

    def draws(n: int, seed_sd: float, sign: float) -> np.ndarray:
        seeds = seed_sd * rng.standard_normal((n, 1))
        return question + sign * interaction + seeds + components["residual_sd"] * rng.standard_normal((n, queries))

    return draws(n_a, components["seed_sd_a"], 1) + difference, draws(n_b, components["seed_sd_b"], -1)
