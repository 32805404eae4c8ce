"""Figures for the book."""

from __future__ import annotations

import pandas as pd

from hybridir.evaluation.lareqa import cross_matrix


def cross_lingual_heatmap(tidy: pd.DataFrame, metric: str = "map", ax=None):
    """Query language × candidate language heat map (Mo. on the diagonal, Cr. elsewhere)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    matrix = cross_matrix(tidy, metric)
    if ax is None:
        _, ax = plt.subplots(figsize=(1 + 0.55 * len(matrix.columns), 0.5 + 0.45 * len(matrix)))
    sns.heatmap(matrix, annot=True, fmt=".2f", cmap="viridis", vmin=0, vmax=1, cbar=False, ax=ax,
                annot_kws={"fontsize": 7})
    ax.set_xlabel("candidate language")
    ax.set_ylabel("query language")
    ax.set_title(f"{tidy.dataset.iloc[0]}: {metric} by language pair")
    return ax


STRATEGY_ORDER = ["X-X-mono", "X-Y", "Hybrid"]  # the paper's order; one colour per strategy on every figure
CURVE_METRICS = {"mono_map": "Mo. mAP", "cross_map": "Cr. mAP", "multi_map": "Mul. mAP", "rank_distance": "rank distance"}


def checkpoint_curves(curves: pd.DataFrame):
    """One panel per metric: value against training step, a line per strategy (band: spread over seeds)."""
    import seaborn as sns

    data = curves.assign(metric=curves.metric.map(CURVE_METRICS))
    grid = sns.relplot(data=data, x="step", y="value", hue="strategy", col="metric", kind="line", marker="o",
                       hue_order=STRATEGY_ORDER,
                       errorbar=("pi", 100), facet_kws={"sharey": False}, col_wrap=2, height=2.6, aspect=1.4,
                       col_order=list(CURVE_METRICS.values()))
    grid.set_titles("{col_name}")
    grid.set_axis_labels("training step", "")
    return grid


def loss_curves(losses: pd.DataFrame):
    """Training loss (smoothed over 10 steps) and validation loss against step, a line per strategy."""
    import seaborn as sns

    smoothed = losses.copy()
    train = smoothed.loss_kind == "train"
    smoothed.loc[train, "loss"] = (smoothed[train].groupby("run")["loss"]
                                   .transform(lambda s: s.rolling(10, min_periods=1).mean()))
    grid = sns.relplot(data=smoothed, x="step", y="loss", hue="strategy", col="loss_kind", kind="line",
                       hue_order=STRATEGY_ORDER,
                       errorbar=("pi", 100), facet_kws={"sharey": False}, height=2.8, aspect=1.4)
    grid.set_titles("{col_name} loss")
    return grid


def alpha_sweep_plot(sweep: pd.DataFrame):
    """Mo./Cr./Mul. mAP and rank distance against α (0 = X-Y, 1 = X-X-mono)."""
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 2.8))
    for column in ("Mo. mAP", "Cr. mAP", "Mul. mAP"):
        left.plot(sweep["α"], sweep[column], marker="o", label=column)
    left.set_xlabel("α (probability of a mono batch)")
    left.set_ylabel("mAP")
    left.legend(fontsize=8)
    right.plot(sweep["α"], sweep["rank distance"], marker="o", color="tab:red")
    right.set_xlabel("α (probability of a mono batch)")
    right.set_ylabel("rank distance")
    figure.tight_layout()
    return figure
