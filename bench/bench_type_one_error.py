"""Benchmark: the size and power of the verdicts' test (issue 17), simulated with the fitted variance components.

    HYBRIDIR_DATA_DIR=../shared/data .venv/bin/python bench/bench_type_one_error.py \
        | tee results/bench/bench_type_one_error.txt

The components are fitted on the committed ``results/cpu`` (lead direction, Mul. mAP, X-X-mono against X-Y:
:func:`hybridir.experiment.statistics.variance_components`); experiments are drawn from that model on the full
pools' 1,190 XQuAD-R questions in their 240 paragraphs, with 3, 5 and 8 seeds per strategy, under no difference
(size: the share of p < 0.05, 2,000 experiments each) and under a difference of two of the noisier strategy's
seed SDs (power, 500 each). Three seed spreads: as fitted (X-Y's seeds barely vary), equal, and both small.
Beside it, the questions-only paired t-test on seed-averaged values, which ignores seeds. Ends with a summary line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from hybridir.data.lareqa import load_lareqa, question_clusters
from hybridir.experiment.report import Experiment, question_units, seed_runs
from hybridir.experiment.statistics import seed_query_test, simulate, variance_components
from hybridir.provenance import hardware, versions

LEAD = "mlqa-r_to_xquad-r"


def rates(components: dict, clusters: np.ndarray, seeds: int, difference: float, n: int,
          rng: np.random.Generator) -> tuple[float, float]:
    ours = naive = 0
    for _ in range(n):
        a, b = simulate(components, clusters, seeds, seeds, difference, rng)
        ours += seed_query_test(a, b, clusters).p < 0.05
        naive += stats.ttest_rel(a.mean(axis=0), b.mean(axis=0)).pvalue < 0.05
    return ours / n, naive / n


def main() -> None:
    print(f"hardware: {hardware()}\nversions: {versions()}\n")
    experiment = Experiment.load(Path(__file__).resolve().parents[1] / "results" / "cpu")
    mono, cross = seed_runs(experiment, LEAD, "mono"), seed_runs(experiment, LEAD, "cross")
    units, unit_clusters = question_units(experiment, LEAD, mono + cross, "multi", "map")
    fitted = variance_components(units[:len(mono)], units[len(mono):], unit_clusters)
    print("fitted on results/cpu (Mul. mAP, X-X-mono = a, X-Y = b): "
          + ", ".join(f"{name} {value:.5f}" for name, value in fitted.items()))
    clusters = question_clusters(load_lareqa("xquad-r"), "paragraph").to_numpy()
    spreads = {"as fitted": fitted, "equal": fitted | {"seed_sd_b": fitted["seed_sd_a"]},
               "both small": fitted | {"seed_sd_a": 0.001, "seed_sd_b": 0.0005}}
    rng = np.random.default_rng(0)
    print(f"\n{'seed spread':12} {'seeds':>5} {'size (ours)':>11} {'size (questions only)':>21} {'power (ours)':>12}")
    worst = {}
    for name, components in spreads.items():
        for seeds in (3, 5, 8):
            size, naive = rates(components, clusters, seeds, 0.0, 2000, rng)
            power, _ = rates(components, clusters, seeds, 2 * max(components["seed_sd_a"], components["seed_sd_b"]),
                             500, rng)
            worst[seeds] = max(worst.get(seeds, 0.0), size)
            print(f"{name:12} {seeds:5d} {size:11.3f} {naive:21.3f} {power:12.3f}", flush=True)
    print(f"\nlargest size at level 0.05: {worst[8]:.3f} with 8 seeds, {worst[5]:.3f} with 5, {worst[3]:.3f} with 3")


if __name__ == "__main__":
    main()
