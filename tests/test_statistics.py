"""The verdicts' test (seeds and questions random): its size under the fitted variance components, statsmodels'
mixed model as its oracle, equivalence and non-inferiority, Holm."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hybridir.experiment.statistics import holm, seed_query_test, variance_components

CPU = "results/cpu"
LEAD = "mlqa-r_to_xquad-r"


def simulate(components: dict, clusters: np.ndarray, n_a: int, n_b: int, difference: float,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) drawn from seed_query_test's model with the given components and a true difference."""
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


@pytest.fixture(scope="module")
def fitted():
    """Variance components of Mul. mAP, X-X-mono (a) against X-Y (b), from the committed cpu results, and
    XQuAD-R's paragraphs as the full pools' clusters."""
    from hybridir.data.lareqa import load_lareqa, question_clusters
    from hybridir.experiment.report import Experiment, question_units, seed_runs

    experiment = Experiment.load(CPU)
    mono, cross = seed_runs(experiment, LEAD, "mono"), seed_runs(experiment, LEAD, "cross")
    units, clusters = question_units(experiment, LEAD, mono + cross, "multi", "map")
    components = variance_components(units[:len(mono)], units[len(mono):], clusters)
    return components, question_clusters(load_lareqa("xquad-r"), "paragraph").to_numpy()


def test_fitted_components_show_the_unequal_seed_spread(fitted):
    components, _ = fitted
    assert components["seed_sd_a"] > 3 * components["seed_sd_b"]  # X-X-mono's seeds spread far more than X-Y's
    assert components["residual_sd"] > 0 and components["question_sd"] > components["question_by_strategy_sd"] > 0


@pytest.mark.parametrize("seeds", [8, 3])
def test_type_one_error_at_5_percent_stays_at_most_6_percent(fitted, seeds):
    """2,000 experiments simulated under no difference, with the fitted components on the full pools' 1,190
    questions in 240 paragraphs: the test rejects at most 6% at level 0.05 (8 seeds per strategy, the lead
    direction; 3, the reverse direction, the α sweep and BEIR). A test over questions alone, which treats one
    set of models as the strategy, rejects far more often: the simulation can tell a test that holds its size."""
    components, clusters = fitted
    rng = np.random.default_rng(17)
    rejected = naive = 0
    simulations = 2000
    for _ in range(simulations):
        a, b = simulate(components, clusters, seeds, seeds, 0.0, rng)
        rejected += seed_query_test(a, b, clusters).p < 0.05
        naive += stats.ttest_rel(a.mean(axis=0), b.mean(axis=0)).pvalue < 0.05
    assert rejected / simulations <= 0.06, rejected / simulations
    assert naive / simulations > 0.15, naive / simulations


def test_power_against_a_real_difference(fitted):
    """With 8 seeds, a true difference of 2 seed SDs of the noisier strategy is found most of the time."""
    components, clusters = fitted
    rng = np.random.default_rng(3)
    found = sum(seed_query_test(*simulate(components, clusters, 8, 8, 2 * components["seed_sd_a"], rng),
                                clusters).p < 0.05 for _ in range(300))
    assert found / 300 > 0.6


def test_the_standard_error_agrees_with_statsmodels_mixed_model():
    """statsmodels' MixedLM (REML) on the same model — strategy fixed; seeds of each strategy, questions and
    question × strategy random — gives the same difference and a standard error within 10% of ours."""
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(5)
    components = {"seed_sd_a": 0.004, "seed_sd_b": 0.001, "question_sd": 0.2, "question_by_strategy_sd": 0.03,
                  "residual_sd": 0.05, "between_cluster_share": 0.0}
    clusters = np.arange(150)
    a, b = simulate(components, clusters, 6, 6, 0.01, rng)
    ours = seed_query_test(a, b)
    rows = [{"y": value, "strategy": name, "seed": f"{name}{s}", "question": q}
            for name, matrix in (("a", a), ("b", b)) for s in range(6) for q, value in enumerate(matrix[s])]
    frame = pd.DataFrame(rows).assign(group=1, seed_a=lambda f: np.where(f.strategy == "a", f.seed, "none"),
                                      seed_b=lambda f: np.where(f.strategy == "b", f.seed, "none"),
                                      interaction=lambda f: f.strategy + f.question.astype(str))
    model = smf.mixedlm("y ~ C(strategy, Treatment('b'))", frame, groups="group", re_formula="0",
                        vc_formula={"seed_a": "0 + C(seed_a)", "seed_b": "0 + C(seed_b)",
                                    "question": "0 + C(question)", "interaction": "0 + C(interaction)"})
    fit = model.fit(reml=True, method="lbfgs")
    name = "C(strategy, Treatment('b'))[T.a]"
    assert fit.params[name] == pytest.approx(ours.difference, abs=1e-9)
    assert fit.bse[name] == pytest.approx(ours.se, rel=0.10)


def test_equivalence_and_non_inferiority_read_the_same_interval():
    rng = np.random.default_rng(0)
    a = 0.5 + 0.001 * rng.standard_normal((8, 1)) + 0.01 * rng.standard_normal((8, 400))
    b = 0.5 + 0.001 * rng.standard_normal((8, 1)) + 0.01 * rng.standard_normal((8, 400))
    test = seed_query_test(a, b)
    low, high = test.interval(0.90)
    assert (test.p_equivalent(0.005) < 0.05) == (-0.005 < low and high < 0.005)  # TOST = the 90% interval inside
    assert test.p_equivalent(1e-6) > 0.4 and test.p_not_below(0.005) <= test.p_equivalent(0.005)
    one_seed = seed_query_test(a[:1], b)
    assert np.isnan(one_seed.p)


def test_holm_adjusts_like_statsmodels_and_keeps_nan():
    assert holm([0.01, 0.04, float("nan"), 0.03]) == pytest.approx([0.03, 0.06, float("nan"), 0.06], nan_ok=True)
