"""The numbers printed in arXiv 2408.10536 v1, as tidy tables shipped with the package (``hybridir/data/paper``).

They are package data, so an installed hybridir (a wheel, Colab) has them without a checkout. The CSV
files were transcribed once from the paper; ``hybridir/data/paper/README.md`` says which table each
row comes from and lists the paper's known typos. Use :func:`paper_table` for the tidy rows and
:func:`paper_summary` for one model's per-language table in the layout of
:func:`hybridir.evaluation.lareqa.summarize`, so that our results and the paper's line up.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PAPER_DIR = Path(__file__).resolve().parent / "data" / "paper"
TABLES = ("lareqa", "rank_distance", "main", "miracl", "lareqa_baselines")
MODELS = ("XLM-R", "LaBSE")
DATASETS = ("xquad-r", "mlqa-r")
SAMPLINGS = ("X-X-mono", "X-Y", "Hybrid")
# Not the paper's: the published full-precision multilingual-e5-small's BEIR SciFact nDCG@10 (MTEB), the
# yardstick for the offline 4-bit copy.
MTEB_SCIFACT_NDCG_AT_10 = 0.676
# Tables 3-8 merged, in the column order of hybridir.evaluation.lareqa.summarize.
SUMMARY_COLUMNS = (("mono", "map"), ("mono", "recall@1"), ("cross", "map"), ("cross", "recall@1"),
                   ("multi", "map"), ("multi", "recall@10"), ("multi", "rank_distance"))


def paper_table(name: str) -> pd.DataFrame:
    """One of the paper's tidy tables: ``lareqa``, ``rank_distance``, ``main``, ``miracl``, ``lareqa_baselines``."""
    _check("table", name, TABLES)
    path = PAPER_DIR / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: this hybridir installation lacks its package data; "
                                "reinstall it (pip install --force-reinstall hybridir)")
    # keep_default_na=False: an empty note is "", not NaN; no cell of these files is missing.
    return pd.read_csv(path, keep_default_na=False, dtype={"query_language": str, "note": str})


def paper_summary(model: str, dataset: str, sampling: str) -> pd.DataFrame:
    """The paper's per-language LAReQA results (Tables 3-8) for one model, dataset and sampling.

    Index: query languages in the paper's order, then ``Mean`` (the printed Mean row); columns:
    (setting, metric) as in :data:`SUMMARY_COLUMNS`.
    """
    _check("model", model, MODELS)
    _check("dataset", dataset, DATASETS)
    _check("sampling", sampling, SAMPLINGS)
    rows = pd.concat([paper_table("lareqa"), paper_table("rank_distance")])
    rows = rows[(rows.model == model) & (rows.dataset == dataset) & (rows.sampling == sampling)]
    table = rows.pivot(index="query_language", columns=["setting", "metric"], values="value")
    # pivot sorts the index; the paper's row order (alphabetical, Mean last) is the file order.
    table = table.reindex(index=rows.query_language.unique(), columns=pd.MultiIndex.from_tuples(
        SUMMARY_COLUMNS, names=["setting", "metric"]))
    table.index.name = "query_language"
    return table.astype(float)


def _check(kind: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; choose one of: {', '.join(valid)}")
