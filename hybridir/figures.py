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


STRATEGY_ORDER = ["X-X-mono", "X-Y", "Hybrid", "X-X"]  # the paper's order; one colour per strategy on every figure
# seaborn's first three colours, as the line plots give them in STRATEGY_ORDER; the zero-shot model in grey.
STRATEGY_COLOURS = {"zero-shot": "#999999", "X-X-mono": "#1f77b4", "X-Y": "#ff7f0e", "Hybrid": "#2ca02c", "X-X": "#d62728"}
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


def strategy_heatmaps(maps: dict[str, pd.DataFrame], metric: str = "mAP"):
    """Top row: one query × candidate language heat map per strategy on one colour scale. Bottom row: Hybrid
    − X-X-mono and Hybrid − X-Y, in points (× 100), on a diverging scale centred on 0 (blue: Hybrid higher)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    names = list(maps)
    low = min(float(m.min().min()) for m in maps.values())
    high = max(float(m.max().max()) for m in maps.values())
    size = len(next(iter(maps.values())))
    figure, axes = plt.subplots(2, len(names), figsize=(3.8 * len(names) + 1, 2 * (0.8 + 0.3 * size)))
    for ax, name in zip(axes[0], names):
        sns.heatmap(maps[name], cmap="viridis", vmin=low, vmax=high, ax=ax, square=True, cbar=False)
        ax.set(title=name, xlabel="candidate language", ylabel="query language" if name == names[0] else "")
        ax.tick_params(axis="y", rotation=0)
    figure.colorbar(axes[0][0].collections[0], ax=list(axes[0]), label=metric, shrink=0.9)
    differences = {f"Hybrid − {other}": 100 * (maps["Hybrid"] - maps[other]) for other in ("X-X-mono", "X-Y")
                   if other in maps and "Hybrid" in maps}
    bound = max((float(d.abs().max().max()) for d in differences.values()), default=1.0)
    for ax in axes[1][len(differences):]:
        ax.remove()
    for ax, (title, difference) in zip(axes[1], differences.items()):
        sns.heatmap(difference, cmap="RdBu", vmin=-bound, vmax=bound, center=0, annot=True, fmt=".1f", square=True,
                    annot_kws={"fontsize": 6}, cbar=False, ax=ax)
        ax.set(title=f"{title} ({metric} × 100)", xlabel="candidate language",
               ylabel="query language" if ax is axes[1][0] else "")
        ax.tick_params(axis="y", rotation=0)
    if differences:
        figure.colorbar(axes[1][0].collections[0], ax=list(axes[1][:len(differences)]), label=f"{metric} points",
                        shrink=0.9)
    return figure


def rank_distance_distributions(distances: pd.DataFrame):
    """Per query language, the distribution of the queries' rank distance for each strategy (seeds pooled),
    on a log scale: a box per strategy, the mean as a white dot."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    order = [s for s in ["zero-shot", *STRATEGY_ORDER] if s in set(distances.strategy)]
    figure, ax = plt.subplots(figsize=(1.1 * distances["query language"].nunique() + 2, 3.6))
    sns.boxplot(data=distances.assign(**{"rank distance": distances["rank distance"].clip(lower=1)}),
                x="query language", y="rank distance", hue="strategy", hue_order=order, showfliers=False,
                palette=STRATEGY_COLOURS,
                showmeans=True, meanprops={"marker": "o", "markerfacecolor": "white", "markeredgecolor": "black",
                                           "markersize": 3}, ax=ax, log_scale=True)
    ax.set_ylabel("rank distance (log; 0 shown as 1)")
    ax.legend(title="strategy", fontsize=7, ncols=len(order))
    figure.tight_layout()
    return figure
