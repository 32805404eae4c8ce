"""Tables for the book: read a run folder, lay our numbers beside the paper's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pandas' Styler needs jinja2, a book dependency
    from pandas.io.formats.style import Styler

SETTING_NAMES = {"mono": "Mo.", "cross": "Cr.", "multi": "Mul."}
MISSING = "–"
# Cells small enough that the paper's nine-column per-language tables fit the page.
COMPACT = "padding: 0.1em 0.4em; font-size: 0.8rem;"


@dataclass(frozen=True)
class RunResult:
    """What :func:`hybridir.evaluation.run.run_evaluation` wrote to one folder."""

    tidy: pd.DataFrame
    summary: pd.DataFrame
    provenance: dict


def load_run(folder: Path | str) -> RunResult:
    folder = Path(folder)
    missing = [name for name in ("tidy.csv", "summary.csv", "provenance.json") if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a finished run (missing {', '.join(missing)}); "
                                "run `hybridir evaluate --output` there first")
    # LAReQA summaries have two header rows (setting, metric); BEIR and MIRACL ones a single row.
    two_rows = (folder / "summary.csv").read_text().startswith("setting,")
    summary = pd.read_csv(folder / "summary.csv", header=[0, 1] if two_rows else 0, index_col=0)
    return RunResult(pd.read_csv(folder / "tidy.csv", keep_default_na=False, na_values=[""]),
                     summary, json.loads((folder / "provenance.json").read_text()))


def provenance_note(provenance: dict) -> str:
    """One Markdown paragraph: what produced these numbers."""
    config = provenance["config"]
    versions = ", ".join(f"{k} {v}" for k, v in provenance["versions"].items())
    hardware = provenance["hardware"]
    device = hardware.get("gpu") or f"{hardware['processor']} ({hardware['cpu_count']} cores)"
    subset = f", subset of {config['max_question_ids']} question ids" if config.get("max_question_ids") else ""
    model = config.get("model_spec", {}).get("name", config["model"])
    spec = config.get("model_spec", {})
    # Runs older than these settings were fp32 in torch.
    precision, engine = spec.get("precision", "fp32"), spec.get("engine", "torch")
    return (f"**Provenance.** model {model} (`{config['model']}`, {precision}, {engine}, "
            f"fingerprint `{provenance['model_fingerprint']}`), "
            f"dataset `{config['dataset']}`{subset}, candidate text `{config.get('candidate_text')}`; "
            f"data checksum `{provenance['data_checksum'][:16]}…`; {versions}; run {provenance['date']} on {device}.")


def side_by_side(ours: pd.DataFrame, paper: pd.DataFrame, paper_label: str = "paper") -> pd.DataFrame:
    """Interleave two summaries with the same (setting, metric) columns: ours, then the paper's."""
    columns = [c for c in ours.columns if c in paper.columns]
    joined = pd.concat({"ours": ours[columns], paper_label: paper.reindex(index=ours.index)[columns]}, axis=1)
    joined = joined.reorder_levels([1, 2, 0], axis=1)
    return joined[[(*column, who) for column in columns for who in ("ours", paper_label)]]


def headline(ours: pd.DataFrame, paper: pd.DataFrame, paper_label: str) -> str:
    """One Markdown sentence with the macro means of the three settings and rank distance, ours vs the paper's."""
    mean = lambda table, setting, metric: table.loc["Mean", (setting, metric)]
    parts = [f"{name} mAP {mean(ours, setting, 'map'):.3f} (paper {mean(paper, setting, 'map'):.3f})"
             for name, setting in (("Mo.", "mono"), ("Cr.", "cross"), ("Mul.", "multi"))]
    distance = (f"rank distance {mean(ours, 'multi', 'rank_distance'):.0f} "
                f"(paper {mean(paper, 'multi', 'rank_distance'):.0f})")
    return f"**Macro means, ours vs {paper_label}:** {'; '.join(parts)}; {distance}."


def compare_means(summaries: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ``Mean`` rows of several summaries side by side: rows (setting, metric), one column per run."""
    return pd.DataFrame({label: summary.loc["Mean"] for label, summary in summaries.items()})


def styled(table: pd.DataFrame, caption: str, digits: int = 3) -> Styler:
    """A table as the book shows it: a caption, fractions to ``digits`` decimals, numbers of 10 and more
    (rank distances, seconds) to one, whole numbers (counts) as integers, a dash for a missing value;
    text cells (``0.800 ± 0.004``, verdicts) as they are."""
    def number(value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            return value
        if pd.isna(value):
            return MISSING
        if float(value).is_integer():
            return f"{int(value):d}"
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.{digits}f}"

    return (table.style.format(number, na_rep=MISSING).set_caption(caption)
            .set_table_styles([{"selector": "td", "props": f"{COMPACT} text-align: right;"},
                               {"selector": "th", "props": COMPACT},
                               {"selector": "caption", "props": "font-size: 0.8rem;"}]))


def styled_by_setting(table: pd.DataFrame, caption: str, digits: int = 3) -> list[Styler]:
    """A (setting, metric, …) table split into one narrower table per setting (Mo., Cr., Mul.)."""
    settings = [s for s in SETTING_NAMES if s in table.columns.get_level_values(0)]
    return [styled(table[setting], f"{caption} — {SETTING_NAMES[setting]}", digits) for setting in settings]


def styled_with_best(table: pd.DataFrame, caption: str, lower_is_better: bool = False, digits: int = 3) -> Styler:
    """:func:`styled`, with each row's best value in bold within each top-level column group (a source)."""
    def bold_best(frame: pd.DataFrame) -> pd.DataFrame:
        marks = pd.DataFrame("", index=frame.index, columns=frame.columns)
        for group in frame.columns.get_level_values(0).unique():
            values = frame[group]
            best = values.min(axis=1) if lower_is_better else values.max(axis=1)
            is_best = values.eq(best, axis=0)
            marks.loc[:, group] = is_best.map(lambda flag: "font-weight: bold" if flag else "").to_numpy()
        return marks

    return styled(table, caption, digits).apply(bold_best, axis=None)


def miracl_beside_the_paper(metric: str, ours: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """The paper's Tables 12-13 for one metric (``ndcg@10`` or ``recall@100``): rows its languages in its
    order, then Mean and Median as printed; columns (model, strategy). Each of ``ours`` (a run's
    summary: languages × metrics) adds a column ("ours", run) on the same rows (– where it lacks one)."""
    from hybridir.paper import paper_table

    printed = paper_table("miracl")
    printed = printed[printed.metric == metric]
    if printed.empty:
        raise ValueError(f"the paper's MIRACL tables have no metric {metric!r}; use ndcg@10 or recall@100")
    table = printed.pivot_table(index="query_language", columns=["model", "sampling"], values="value", sort=False)
    table = table.reindex(index=list(printed.query_language.unique()))
    for run, summary in (ours or {}).items():
        table["ours", run] = summary[metric].reindex(table.index)
    table.columns.names = ["", "strategy"]
    table.index.name = "query language"
    return table


def miracl_cost(bench_output: Path | str) -> dict:
    """The figures of ``bench/bench_miracl_scale.py``'s committed output: ``memory`` ((path, passages) -> peak
    RSS in GB), ``cpu`` (processes -> passages/s of the offline model), ``gpu`` (GPUs -> passages/s; empty
    where the machine had none) and ``hardware``."""
    import re

    figures: dict = {"memory": {}, "cpu": {}, "gpu": {}, "hardware": {}}
    for line in Path(bench_output).read_text().splitlines():
        if line.startswith("# hardware: "):
            figures["hardware"] = json.loads(line.removeprefix("# hardware: "))
        elif match := re.fullmatch(r"(sharded|in-memory)\s+([\d,]+) passages (\{.*\})", line):
            figures["memory"][match[1], int(match[2].replace(",", ""))] = json.loads(match[3])["peak_rss_gb"]
        elif match := re.fullmatch(r"(\d+) (process(?:es)?|GPUs?): (\{.*?\})(;.*)?", line):
            kind = "cpu" if match[2].startswith("process") else "gpu"
            figures[kind][int(match[1])] = json.loads(match[3])["passages_per_second"]
    if not figures["memory"] or not figures["cpu"]:
        raise ValueError(f"{bench_output} holds no memory or throughput lines of bench/bench_miracl_scale.py; "
                         "run it again")
    return figures


def miracl_cost_note(bench_output: Path | str, models: int = 6) -> str:
    """What the paper's Tables 12-13 cost (``models`` models over its 15 languages' passages), in Markdown, from
    the benchmark's output: memory at two corpus sizes, then encoding time per model on the measured hardware."""
    from hybridir.data.miracl import MIRACL_PASSAGES
    from hybridir.presets import PAPER_MIRACL_LANGUAGES

    cost = miracl_cost(bench_output)
    passages = sum(MIRACL_PASSAGES[lang] for lang in PAPER_MIRACL_LANGUAGES)
    sizes = sorted({size for _, size in cost["memory"]})
    small, large = sizes[0], sizes[-1]
    growth = {path: cost["memory"][path, large] / cost["memory"][path, small] for path in ("sharded", "in-memory")}
    machine = f"{cost['hardware'].get('processor', 'this CPU')} ({cost['hardware'].get('cpu_count', '?')} cores)"
    cpu = ", ".join(f"{rate:.1f} passages/s on {n} process{'es' if n > 1 else ''}" for n, rate in cost["cpu"].items())
    best = max(cost["cpu"].values())
    lines = [
        f"**Memory.** From {small:,} to {large:,} passages, the sharded search's peak resident memory went from "
        f"{cost['memory']['sharded', small]:.2f} to {cost['memory']['sharded', large]:.2f} GB "
        f"(×{growth['sharded']:.2f}); "
        f"the in-memory search's from {cost['memory']['in-memory', small]:.2f} to "
        f"{cost['memory']['in-memory', large]:.2f} GB (×{growth['in-memory']:.2f}).",
        f"**Time on a CPU.** The offline multilingual-e5-small encoded Wikipedia paragraphs on {machine} at {cpu}: "
        f"the paper's {passages:,} passages would take {passages / best / 86400:,.0f} days per model, "
        f"{models * passages / best / 86400:,.0f} days for its {models} models: Tables 12–13 are a GPU job.",
    ]
    if cost["gpu"]:
        gpu = ", ".join(f"{models * passages / rate / 3600:,.1f} h on {n} GPU{'s' if n > 1 else ''} "
                        f"({rate:,.0f} passages/s)" for n, rate in cost["gpu"].items())
        lines.append(f"**Time on GPUs.** An XLM-R-base-shaped model, {models} models: {gpu}.")
    else:
        lines.append("**Time on GPUs.** Not measured yet: the benchmark ran on a machine without one. "
                     "`python bench/bench_miracl_scale.py` on a GPU machine measures it (per GPU count) and this "
                     "paragraph reads the committed output.")
    return "\n\n".join(lines)
