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
