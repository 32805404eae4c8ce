"""Tables for the book: read a run folder, lay our numbers beside the paper's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


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
    summary = pd.read_csv(folder / "summary.csv", header=[0, 1], index_col=0)
    if all(str(c).startswith("Unnamed") for c in summary.columns.get_level_values(1)):
        summary = pd.read_csv(folder / "summary.csv", index_col=0)  # BEIR/MIRACL: one header row
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
    precision = config.get("model_spec", {}).get("precision", "fp32")  # runs older than the setting were fp32
    return (f"**Provenance.** model {model} (`{config['model']}`, {precision}, "
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
