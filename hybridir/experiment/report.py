"""Tables of the reproduced experiment, read from a ``hybridir reproduce`` results folder.

Everything here reads the small committed files (run records, curves, evaluation summaries and
per-query metrics): the book's pages call these functions and compute nothing expensive.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir.evaluation.run import PER_QUERY
from hybridir.experiment.runner import BEIR, EVALUATIONS, RECORD, RUNS, ZERO_SHOT
from hybridir.tables import load_run

# standard is LAReQA's X-X: same-language pairs of all languages mixed in each batch.
STRATEGY_NAMES = {"mono": "X-X-mono", "cross": "X-Y", "hybrid": "Hybrid", "standard": "X-X", ZERO_SHOT: "zero-shot"}
ORDER = (ZERO_SHOT, "mono", "cross", "hybrid", "standard")  # every table's row or column order
ALPHAS = {"mono": 1.0, "cross": 0.0, "hybrid": 0.5, "standard": np.nan}  # a strategy's own α (standard has none)
# The Mean-row numbers of one evaluation, in the paper's column order, with short labels.
HEADLINE = {("mono", "map"): "Mo. mAP", ("mono", "recall@1"): "Mo. R@1", ("cross", "map"): "Cr. mAP",
            ("cross", "recall@1"): "Cr. R@1", ("multi", "map"): "Mul. mAP", ("multi", "recall@10"): "Mul. R@10",
            ("multi", "rank_distance"): "rank distance"}
_RUN = re.compile(r"(?P<strategy>mono|cross|hybrid|standard)(?:-a(?P<alpha>[0-9.]+))?(?P<stratified>-stratified)?"
                  r"-s(?P<seed>\d+)")


def parse_run(run: str) -> dict:
    """``hybrid-a0.25-s0`` → strategy hybrid, α 0.25, seed 0 (α is the strategy's own: 1, 0 or 0.5)."""
    if run == ZERO_SHOT:
        return {"strategy": ZERO_SHOT, "alpha": np.nan, "seed": np.nan, "sweep": False, "stratified": False}
    match = _RUN.fullmatch(run)
    if match is None:
        raise ValueError(f"{run!r} is not a run name such as hybrid-s0 or hybrid-a0.25-s0")
    strategy = match["strategy"]
    alpha = float(match["alpha"]) if match["alpha"] else ALPHAS[strategy]
    return {"strategy": strategy, "alpha": alpha, "seed": int(match["seed"]), "sweep": match["alpha"] is not None,
            "stratified": match["stratified"] is not None}


@dataclass(frozen=True)
class Experiment:
    """One results folder of ``hybridir reproduce``."""

    folder: Path

    @classmethod
    def load(cls, folder: Path | str) -> "Experiment":
        folder = Path(folder)
        if not (folder / RECORD).is_file():
            raise FileNotFoundError(f"{folder} holds no {RECORD}: run `hybridir reproduce --output {folder}` first")
        return cls(folder)

    @cached_property
    def record(self) -> dict:
        return json.loads((self.folder / RECORD).read_text())

    @property
    def directions(self) -> list[str]:
        """Direction folders in the preset's order (the lead direction first)."""
        names = [f"{d['train']}_to_{d['evaluate']}" for d in self.record["preset"]["directions"]]
        return [name for name in names if (self.folder / EVALUATIONS / name).is_dir()]

    def runs(self, direction: str) -> pd.DataFrame:
        """One row per evaluated run: run, strategy, alpha, seed, sweep, stratified, and main (a strategy's own
        seeds: neither an α of the sweep nor stratified)."""
        folder = self.folder / EVALUATIONS / direction
        names = sorted(p.name for p in folder.iterdir() if (p / "summary.csv").is_file())
        runs = pd.DataFrame([{"run": name, **parse_run(name)} for name in names])
        return runs.assign(main=~runs.sweep & ~runs.stratified)

    def summary(self, direction: str, run: str) -> pd.DataFrame:
        return load_run(self.folder / EVALUATIONS / direction / run).summary

    def tidy(self, direction: str, run: str) -> pd.DataFrame:
        return load_run(self.folder / EVALUATIONS / direction / run).tidy

    def per_query(self, direction: str, run: str) -> pd.DataFrame:
        """A run's per-query metrics; read once (each claim's relations read the same runs): do not modify it."""
        path = self.folder / EVALUATIONS / direction / run / PER_QUERY
        return _read_per_query(path, path.stat().st_mtime_ns)

    def beir_runs(self, dataset: str) -> list[str]:
        """The runs with per-query BEIR results on ``dataset`` (zero-shot included)."""
        folder = self.folder / BEIR / dataset
        return sorted(p.name for p in folder.iterdir() if (p / PER_QUERY).is_file()) if folder.is_dir() else []

    def beir_per_query(self, dataset: str, run: str) -> pd.DataFrame:
        path = self.folder / BEIR / dataset / run / PER_QUERY
        return _read_per_query(path, path.stat().st_mtime_ns)

    def run_record(self, direction: str, run: str) -> dict:
        return json.loads((self.folder / RUNS / direction / run / "run.json").read_text())

    def curve(self, direction: str, run: str) -> pd.DataFrame | None:
        """A run's checkpoint curve (``RetrievalCurveCallback``), one row per step: a resumed run recomputes
        the steps after its checkpoint, and the later row wins."""
        path = self.folder / RUNS / direction / run / "curve.csv"
        if not path.is_file():
            return None
        return pd.read_csv(path).drop_duplicates("step", keep="last").sort_values("step").reset_index(drop=True)


@lru_cache(maxsize=64)
def _read_per_query(path: Path, _modified: int) -> pd.DataFrame:
    """Cached on (path, modification time): a rewritten file is read again."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""],
                       dtype={"qid": str, "query_language": str, "top_language": str})


def headline(summary: pd.DataFrame) -> pd.Series:
    mean = summary.loc["Mean"]
    return pd.Series({label: mean[column] for column, label in HEADLINE.items() if column in mean.index})


def strategy_table(experiment: Experiment, direction: str) -> pd.DataFrame:
    """Mean-row metrics per strategy: mean and standard deviation over seeds (sweep runs left out)."""
    runs = experiment.runs(direction)
    runs = runs[runs.main]
    rows = [headline(experiment.summary(direction, run)).rename(run) for run in runs.run]
    values = pd.DataFrame(rows).join(runs.set_index("run")[["strategy", "seed"]])
    grouped = values.groupby("strategy", sort=False)
    table = pd.concat({"mean": grouped[list(HEADLINE.values())].mean(),
                       "std": grouped[list(HEADLINE.values())].std(ddof=1),
                       "seeds": grouped.size().to_frame("seeds")}, axis=1)
    order = [s for s in ORDER if s in table.index]
    table = table.loc[order]
    table.index = [STRATEGY_NAMES[s] for s in order]
    return table


def format_mean_std(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """``0.612 ± 0.004`` cells from :func:`strategy_table` (no ± for a single seed)."""
    columns = [c for c in HEADLINE.values() if c in table["mean"].columns]
    out = pd.DataFrame(index=table.index)
    for column in columns:
        places = 1 if column == "rank distance" else digits
        mean, std = table["mean"][column], table["std"][column]
        out[column] = [f"{m:.{places}f}" + (f" ± {s:.{places}f}" if np.isfinite(s) else "") for m, s in zip(mean, std)]
    out["seeds"] = table["seeds"]["seeds"].astype(int).to_numpy()
    return out


def question_units(experiment: Experiment, direction: str, runs: list[str], setting: str,
                   metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(runs × question ids) of one metric, and each id's paragraph (the tests' cluster).

    A unit is a question id with every row of it (query languages, and in Cr. target languages) weighted as
    the Mean row weighs it — within a (query language[, target language]) cell, then over a query
    language's targets, then over query languages — and scaled by the number of ids, so that a run's mean over
    ids is its Mean-row value exactly (on MLQA-R, where ids differ in their languages, a plain mean over an
    id's rows would test another quantity). ``setting`` "average" is the mean of the Mo., Cr. and Mul. mAP
    units; ``metric`` "log_rank_distance" takes each query's log rank distance (the geometric mean's test).
    Results written before Cr. had a row per target language give one row per query there.
    """
    from hybridir.data.lareqa import load_lareqa, question_clusters

    if setting == "average":
        parts = [question_units(experiment, direction, runs, part, "map") for part in ("mono", "cross", "multi")]
        return sum(units for units, _ in parts) / 3, parts[0][1]
    columns = []
    for run in runs:
        table = experiment.per_query(direction, run)
        rows = table[table.setting == setting]
        value = np.log(rows["rank_distance"]) if metric == "log_rank_distance" else rows[metric]
        target = rows["candidate_language"] if "candidate_language" in rows else pd.Series("", index=rows.index)
        cell_size = rows.groupby([rows.query_language, target]).qid.transform("size")
        targets = target.groupby(rows.query_language).transform("nunique")
        weight = 1.0 / (rows.query_language.nunique() * targets * cell_size)
        contribution = (weight * value).groupby(rows.qid).sum()
        columns.append((contribution * len(contribution)).rename(run))
    matrix = pd.concat(columns, axis=1, join="inner")
    if matrix.isna().any().any() or len(matrix) < len(columns[0]):
        raise ValueError(f"{direction}: runs {', '.join(runs)} were evaluated on different question ids; "
                         "evaluate them on the same pools")
    paragraphs = question_clusters(load_lareqa(direction.split("_to_")[1]), "paragraph")
    return matrix.T.to_numpy(), paragraphs[matrix.index].to_numpy()


def seed_runs(experiment: Experiment, direction: str, strategy: str) -> list[str]:
    runs = experiment.runs(direction)
    return runs[(runs.strategy == strategy) & runs.main].run.tolist()


def language_bias(experiment: Experiment, direction: str) -> pd.DataFrame:
    """Share of queries whose best-ranked relevant candidate (Mul.) is in the query's own language:
    rows query language (and Mean), columns strategy (mean over seeds)."""
    runs = experiment.runs(direction)
    runs = runs[runs.main]
    shares = {}
    for run, strategy in zip(runs.run, runs.strategy):
        multi = experiment.per_query(direction, run)
        multi = multi[multi.setting == "multi"]
        shares[run] = (multi.top_language == multi.query_language).groupby(multi.query_language).mean()
    table = pd.DataFrame(shares)
    by_strategy = table.T.groupby(runs.set_index("run").strategy).mean().T
    order = [s for s in ORDER if s in by_strategy.columns]
    by_strategy = by_strategy[order]
    by_strategy.columns = [STRATEGY_NAMES[s] for s in order]
    by_strategy.loc["Mean"] = by_strategy.mean()
    return by_strategy


def language_fairness(experiment: Experiment, direction: str) -> pd.DataFrame:
    """Per strategy (mean over its seeds), four summaries of language bias in the multilingual pool, each
    averaged over query languages as the Mean row: rank distance (the paper's mean), its geometric mean
    (robust to the long tail), the share of queries whose best-ranked answer is in their own language, and
    PEER@100 (higher is fairer; NaN for results evaluated before hybridir computed it)."""
    runs = experiment.runs(direction)
    rows = {}
    for run in runs[runs.main].run:
        multi = experiment.per_query(direction, run)
        multi = multi[multi.setting == "multi"]
        by_language = pd.DataFrame({
            "rank distance": multi.rank_distance, "log": np.log(multi.rank_distance),
            "same language first": (multi.top_language == multi.query_language).astype(float),
            "PEER@100": multi["peer"] if "peer" in multi else np.nan}).groupby(multi.query_language).mean().mean()
        rows[run] = by_language.rename({"log": "rank distance (geometric mean)"})
        rows[run]["rank distance (geometric mean)"] = np.exp(rows[run]["rank distance (geometric mean)"])
    table = pd.DataFrame(rows).T.groupby(runs.set_index("run").strategy).mean()
    order = [s for s in ORDER if s in table.index]
    table = table.loc[order]
    table.index = [STRATEGY_NAMES[s] for s in order]
    return table[["rank distance", "rank distance (geometric mean)", "same language first", "PEER@100"]]


def alpha_sweep(experiment: Experiment, direction: str) -> pd.DataFrame:
    """Mean-row metrics against α, each the mean over the sweep's seeds (α = 0 is X-Y, 0.5 Hybrid, 1 X-X-mono,
    at those seeds), with the number of seeds and, where there are several, each metric's standard deviation."""
    runs = experiment.runs(direction)
    runs = runs[runs.alpha.notna() & ~runs.stratified]  # zero-shot and standard have no α
    sweep_seeds = runs[runs.sweep].seed.unique()
    if len(sweep_seeds) == 0:
        return pd.DataFrame()
    chosen = runs[runs.seed.isin(sweep_seeds)]
    values = pd.DataFrame([headline(experiment.summary(direction, run)) for run in chosen.run])
    grouped = values.groupby(chosen.alpha.to_numpy())
    table = grouped.mean()
    if len(sweep_seeds) > 1:
        table = table.join(grouped.std(ddof=1).add_suffix(" SD"))
    table.insert(0, "seeds", grouped.size())
    return table.rename_axis("α").reset_index()


def curves(experiment: Experiment, direction: str) -> pd.DataFrame:
    """Every run's checkpoint curve, long: step, metric, value, run, strategy, seed."""
    runs = experiment.runs(direction)
    frames = []
    for run, strategy, seed, main in zip(runs.run, runs.strategy, runs.seed, runs.main):
        curve = experiment.curve(direction, run) if strategy != ZERO_SHOT and main else None
        if curve is not None:
            long = curve.drop(columns="seconds").melt(id_vars="step", var_name="metric")
            frames.append(long.assign(run=run, strategy=STRATEGY_NAMES[strategy], seed=seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def training_losses(experiment: Experiment, direction: str) -> pd.DataFrame:
    """Training and validation loss per step, long: step, loss ('train' / 'validation'), value, run, strategy."""
    runs = experiment.runs(direction)
    frames = []
    for run, strategy, main in zip(runs.run, runs.strategy, runs.main):
        if strategy == ZERO_SHOT or not main:
            continue
        record = experiment.run_record(direction, run)
        train = pd.DataFrame(record["train_loss"]).assign(loss_kind="train")
        validation = pd.DataFrame(record["eval_loss"]).rename(columns={"eval_loss": "loss"}).assign(
            loss_kind="validation")
        frames.append(pd.concat([train, validation]).assign(run=run, strategy=STRATEGY_NAMES[strategy]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def cross_pair_make_up(experiment: Experiment, direction: str) -> pd.DataFrame:
    """Per X-Y / Hybrid run: X-Y pairs used, and the share of their query and passage sides in each language."""
    runs = experiment.runs(direction)
    rows = []
    for run, strategy in zip(runs.run, runs.strategy):
        if strategy == ZERO_SHOT:
            continue
        pairs = (experiment.run_record(direction, run).get("batches") or {}).get("cross_language_pairs", {})
        if not pairs:
            continue
        sides = pd.Series(dtype=float)
        for pair, count in pairs.items():
            query, passage = pair.split("-")
            sides = sides.add(pd.Series({query: count, passage: count}), fill_value=0)
        total = sum(pairs.values())
        rows.append({"run": run, "X-Y pairs": total, **(sides / (2 * total)).round(3).to_dict()})
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def beir_table(experiment: Experiment) -> pd.DataFrame:
    """BEIR nDCG@10 and R@100 per dataset and run (zero-shot and the lead direction's first-seed models)."""
    rows = []
    for dataset in sorted(p.name for p in (experiment.folder / BEIR).glob("*") if p.is_dir()):
        for folder in sorted((experiment.folder / BEIR / dataset).iterdir()):
            if (folder / "summary.csv").is_file():
                mean = load_run(folder).summary.loc["Mean"]
                info = parse_run(folder.name)
                rows.append({"dataset": dataset, "run": folder.name, "strategy": STRATEGY_NAMES[info["strategy"]],
                             "nDCG@10": mean.get("ndcg@10"), "R@100": mean.get("recall@100")})
    return pd.DataFrame(rows)


def stage_times(experiment: Experiment) -> pd.DataFrame:
    """Time per kind of stage (train, evaluate, beir), in minutes, from ``experiment.json``: each stage's time when
    it was computed, so a rerun that took stages from the cache still shows what they cost. ``minutes`` is wall
    time (it grows while a stage is paused or shares the cores), ``CPU minutes`` the CPU time of its process; a
    stage computed before the record kept a time counts as unknown, and the ``unknown`` columns say how many."""
    stages = pd.DataFrame(experiment.record["stages"])
    if "computed_seconds" not in stages:  # a record from before computed_seconds: this invocation's times
        stages["computed_seconds"] = stages["seconds"].where(~stages["cached"])
    if "cpu_seconds" not in stages:
        stages["cpu_seconds"] = np.nan
    stages = stages.astype({"computed_seconds": float, "cpu_seconds": float})

    def unknown(values: pd.Series) -> int:
        return int(values.isna().sum())

    table = stages.groupby("kind", sort=False).agg(
        stages=("stage", "size"), minutes=("computed_seconds", "sum"), unknown=("computed_seconds", unknown),
        cpu_minutes=("cpu_seconds", "sum"), cpu_unknown=("cpu_seconds", unknown))
    table.loc["total"] = [len(stages), stages.computed_seconds.sum(), unknown(stages.computed_seconds),
                          stages.cpu_seconds.sum(), unknown(stages.cpu_seconds)]
    for column in ("minutes", "cpu_minutes"):
        table[column] = (table[column].astype(float) / 60).round(1)
    table = table.astype({"stages": int, "unknown": int, "cpu_unknown": int})
    return table.rename(columns={"cpu_minutes": "CPU minutes", "cpu_unknown": "CPU unknown"})


def stage_machines(experiment: Experiment) -> pd.DataFrame:
    """How many stages of each kind each machine computed (``experiment.json``'s per-stage ``hardware``, read from
    the stages' own outputs): an experiment resumed on other machines names each; "not recorded" for stages of a
    record from before stages kept their machine."""
    rows = [{"machine": machine_label(stage.get("hardware")), "kind": stage["kind"]}
            for stage in experiment.record["stages"]]
    table = pd.DataFrame(rows, columns=["machine", "kind"]).pivot_table(index="machine", columns="kind",
                                                                         aggfunc="size", fill_value=0)
    return table.assign(total=table.sum(axis=1)).sort_values("total", ascending=False)


def machine_label(hardware: dict | None) -> str:
    """A machine in a few words: its processor, matrix ISA flags, accelerator and core count."""
    if not hardware:
        return "not recorded"
    words = [str(hardware[key]) for key in ("processor", "isa", "gpu") if hardware.get(key)]
    return ", ".join(words) + (f", {hardware['cpu_count']} cores" if hardware.get("cpu_count") else "")


PAPER_COLUMNS = {("mono", "map"): "Mo. mAP", ("cross", "map"): "Cr. mAP", ("multi", "map"): "Mul. mAP",
                 ("multi", "rank_distance"): "rank distance"}


def beside_the_paper(experiment: Experiment, direction: str) -> pd.DataFrame:
    """The paper's Tables 1-2 layout for the evaluation dataset: its XLM-R and LaBSE rows (printed
    numbers), then ours (mean ± std over seeds), one row per model and strategy."""
    from hybridir.paper import paper_table

    dataset = direction.split("_to_")[1]
    printed = pd.concat([paper_table("main"), paper_table("rank_distance")])
    printed = printed[(printed.dataset == dataset) & (printed.query_language == "Mean")]
    printed = printed[[(s, m) in PAPER_COLUMNS for s, m in zip(printed.setting, printed.metric)]]
    paper = printed.assign(column=[PAPER_COLUMNS[s, m] for s, m in zip(printed.setting, printed.metric)]).pivot_table(
        index=["model", "sampling"], columns="column", values="value", aggfunc="first", sort=False)
    paper = paper.reindex(columns=list(PAPER_COLUMNS.values()))
    paper = paper.apply(lambda col: col.map(lambda v: "" if pd.isna(v) else
                                            (f"{v:.0f}" if col.name == "rank distance" else f"{v:.3f}")))
    paper.index = pd.MultiIndex.from_tuples([(f"paper: {m}", s) for m, s in paper.index])
    ours = format_mean_std(strategy_table(experiment, direction))[list(PAPER_COLUMNS.values())]
    ours.index = pd.MultiIndex.from_tuples([("ours: multilingual-e5-small", s) for s in ours.index])
    table = pd.concat([paper, ours])
    table.index.names = ["model", "strategy"]
    return table


# The paper's per-language tables: (dataset, model) -> table number; rank distance is Table 7 / 8.
PAPER_LANGUAGE_TABLES = {("xquad-r", "XLM-R"): 3, ("mlqa-r", "XLM-R"): 4, ("xquad-r", "LaBSE"): 5,
                         ("mlqa-r", "LaBSE"): 6}
PAPER_RANK_DISTANCE_TABLES = {"xquad-r": 7, "mlqa-r": 8}
PAPER_MODELS = ("XLM-R", "LaBSE")
OURS = "ours"


def per_language_beside_the_paper(experiment: Experiment, direction: str, setting: str,
                                  metric: str) -> pd.DataFrame:
    """The paper's Tables 3-8 layout for one (setting, metric) of the evaluation dataset: per query
    language, the paper's XLM-R and LaBSE values per strategy (printed), then ours (mean over seeds).

    Rows: the paper's languages in its order, then ``Mean``; columns: (source, strategy).
    """
    from hybridir.paper import paper_summary

    dataset = direction.split("_to_")[1]
    columns: dict[tuple[str, str], pd.Series] = {}
    for model in PAPER_MODELS:
        for strategy in ("mono", "cross", "hybrid"):
            columns[f"paper {model}", STRATEGY_NAMES[strategy]] = paper_summary(
                model, dataset, STRATEGY_NAMES[strategy])[(setting, metric)]
    for strategy in ORDER[1:]:
        seeds = [experiment.summary(direction, run)[(setting, metric)]
                 for run in seed_runs(experiment, direction, strategy)]
        if seeds:
            columns[OURS, STRATEGY_NAMES[strategy]] = pd.concat(seeds, axis=1).mean(axis=1)
    table = pd.DataFrame(columns)
    order = list(paper_summary(PAPER_MODELS[0], dataset, "Hybrid").index)
    table = table.reindex([language for language in order if language in table.index])
    table.columns.names = ["", "strategy"]
    table.index.name = "query language"
    return table


def best_strategy(table: pd.DataFrame, lower_is_better: bool) -> pd.DataFrame:
    """For a :func:`per_language_beside_the_paper` table: each row's best strategy per source."""
    best = {}
    for source in table.columns.get_level_values(0).unique():
        values = table[source]
        best[source] = values.idxmin(axis=1) if lower_is_better else values.idxmax(axis=1)
    return pd.DataFrame(best)


def best_strategy_agreement(experiment: Experiment, direction: str) -> pd.DataFrame:
    """Per (setting, metric) of the paper's tables: in how many query languages our best strategy is the
    paper's best for XLM-R and for LaBSE, and the best strategy of each on the Mean row."""
    rows = []
    for (setting, metric), label in HEADLINE.items():
        table = per_language_beside_the_paper(experiment, direction, setting, metric)
        paper_strategies = [STRATEGY_NAMES[s] for s in ("mono", "cross", "hybrid")]  # the paper trained no X-X
        best = best_strategy(table.loc[:, table.columns.get_level_values(1).isin(paper_strategies)],
                             lower_is_better=metric == "rank_distance")
        languages = best.drop(index="Mean")
        row = {"metric": label}
        for model in PAPER_MODELS:
            row[f"same best as {model}"] = f"{int((languages[OURS] == languages[f'paper {model}']).sum())} of {len(languages)}"
        row |= {f"best on Mean: {source}": best.loc["Mean", source] for source in best.columns}
        rows.append(row)
    return pd.DataFrame(rows).set_index("metric")


def agreement_with_the_paper(experiment: Experiment, direction: str) -> pd.DataFrame:
    """How our effects agree with the paper's, the way IR reproducibility studies measure it, per paper model
    (XLM-R, LaBSE) and headline metric, with the query languages as topics (the paper prints per-language
    tables only): repro-eval's effect ratio (ER: our mean improvement of Hybrid over a pure strategy ÷ the
    paper's) and ΔRI (the paper's relative improvement − ours); the mean Kendall τ of the three strategies'
    ranking per language; and the share of (language, pure strategy) cells where Hybrid's improvement has the
    paper's sign. Improvement is "Hybrid − other", so for rank distance a negative one is better."""
    from repro_eval.measure.overall_effects import DRI, ER
    from scipy.stats import kendalltau

    strategies = [STRATEGY_NAMES[s] for s in ("mono", "cross", "hybrid")]
    rows = []
    for (setting, metric), label in HEADLINE.items():
        table = per_language_beside_the_paper(experiment, direction, setting, metric).drop(index="Mean")
        ours = table[OURS]
        for model in PAPER_MODELS:
            paper = table[f"paper {model}"]
            row = {"metric": label, "paper model": model}
            signs = []
            for other in strategies[:2]:
                arguments = (_topics(paper, "Hybrid"), _topics(paper, other), _topics(ours, "Hybrid"),
                             _topics(ours, other))
                row[f"ER vs {other}"] = ER(*arguments)["value"]
                row[f"ΔRI vs {other}"] = DRI(*arguments)["value"]
                signs += list(np.sign(paper["Hybrid"] - paper[other]) == np.sign(ours["Hybrid"] - ours[other]))
            row["Kendall τ (mean over languages)"] = float(np.nanmean([
                kendalltau(paper.loc[language, strategies], ours.loc[language, strategies]).statistic
                for language in table.index]))
            row["same sign"] = f"{sum(signs)} of {len(signs)}"
            rows.append(row)
    return pd.DataFrame(rows).set_index(["metric", "paper model"])


def _topics(values: pd.DataFrame, strategy: str) -> dict[str, dict[str, float]]:
    """One strategy's per-language values as repro-eval's run scores: {topic: {measure: score}}."""
    return {language: {"value": float(values.loc[language, strategy])} for language in values.index}


def language_pair_maps(experiment: Experiment, direction: str, metric: str = "map") -> dict[str, pd.DataFrame]:
    """Per strategy (zero-shot first): the query × candidate language matrix of ``metric`` (Mo. on the
    diagonal, Cr. elsewhere), mean over seeds."""
    from hybridir.evaluation.lareqa import cross_matrix

    maps = {}
    for strategy in ORDER:
        matrices = [cross_matrix(experiment.tidy(direction, run), metric)
                    for run in seed_runs(experiment, direction, strategy)]
        if matrices:
            maps[STRATEGY_NAMES[strategy]] = sum(matrices) / len(matrices)
    return maps


def rank_distances(experiment: Experiment, direction: str) -> pd.DataFrame:
    """Each query's rank distance in the multilingual pool, per run: query language, strategy, seed, value
    (sweep runs left out)."""
    runs = experiment.runs(direction)
    frames = []
    for run, strategy, seed in runs[runs.main][["run", "strategy", "seed"]].itertuples(index=False):
        queries = experiment.per_query(direction, run)
        queries = queries[queries.setting == "multi"]
        frames.append(pd.DataFrame({"query language": queries.query_language, "strategy": STRATEGY_NAMES[strategy],
                                    "seed": seed, "rank distance": queries.rank_distance}))
    return pd.concat(frames, ignore_index=True)


def strategy_spread(experiment: Experiment, direction: str) -> pd.DataFrame:
    """How far apart the paper's three strategies lie (best − worst Mean-row value) per headline metric: ours
    (seed means) beside the paper's XLM-R and LaBSE on the same dataset."""
    from hybridir.paper import paper_table

    dataset = direction.split("_to_")[1]
    strategies = [STRATEGY_NAMES[s] for s in ("mono", "cross", "hybrid")]
    ours = strategy_table(experiment, direction)["mean"]
    ours = ours.loc[[s for s in strategies if s in ours.index], list(PAPER_COLUMNS.values())]
    printed = pd.concat([paper_table("main"), paper_table("rank_distance")])
    printed = printed[(printed.dataset == dataset) & (printed.query_language == "Mean")
                      & np.array([(s, m) in PAPER_COLUMNS for s, m in zip(printed.setting, printed.metric)])]
    printed = printed.assign(column=[PAPER_COLUMNS[s, m] for s, m in zip(printed.setting, printed.metric)])
    spread = {OURS: ours.max() - ours.min() if len(ours) == len(strategies) else ours.max() * np.nan}
    for model in PAPER_MODELS:
        values = printed[printed.model == model].pivot_table(index="sampling", columns="column", values="value")
        spread[f"paper {model}"] = values.max() - values.min()
    return pd.DataFrame(spread).reindex(list(PAPER_COLUMNS.values()))


def stratified_spread(experiment: Experiment, direction: str) -> pd.DataFrame:
    """Hybrid with the paper's coin (each batch mono with probability α) beside Hybrid with the stratified
    mono draw (a run's mono share exactly α): seeds, the range of X-Y batches per run, and each headline
    metric's mean and standard deviation over seeds. Empty where the experiment ran no stratified seeds."""
    runs = experiment.runs(direction)
    hybrid = runs[(runs.strategy == "hybrid") & ~runs.sweep]
    if not hybrid.stratified.any():
        return pd.DataFrame()
    rows = []
    for stratified, group in hybrid.groupby("stratified"):
        values = pd.DataFrame([headline(experiment.summary(direction, run)) for run in group.run])
        cross = [experiment.run_record(direction, run)["batches"]["strategy"].get("cross", 0) for run in group.run]
        row = {"draw": "stratified" if stratified else "coin", "seeds": len(group),
               "X-Y batches, fewest": min(cross), "X-Y batches, most": max(cross)}
        for column in PAPER_COLUMNS.values():
            row[f"{column} mean"] = values[column].mean()
            row[f"{column} SD"] = values[column].std(ddof=1)
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("draw")
    return frame.loc[[draw for draw in ("coin", "stratified") if draw in frame.index]]
