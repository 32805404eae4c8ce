"""The findings text: written from the results, never typed (issue 17's last point)."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from hybridir.experiment import findings as findings_module
from hybridir.experiment.claims import CANNOT_DECIDE, INCONCLUSIVE, NEITHER, check_claims, compare_marks
from hybridir.experiment.findings import findings, scifact_scale_note, shorter_preset_note, signed, span, value
from hybridir.experiment.report import Experiment, machine_label, stage_machines, stage_times

ROOT = Path(__file__).resolve().parents[1]
CPU = ROOT / "results" / "cpu"
LEAD = "mlqa-r_to_xquad-r"
# A number typed as a result: a decimal, or a percentage. Metric names (nDCG@10) and citations are not.
TYPED = re.compile(r"\d+\.\d+|\d+\s?%")
LABELS = ("95% interval",)  # check_claims' column name, which the page's code selects
NAMES = re.compile(r"(?i)ndcg@10|r(ecall)?@100|(nano)?e5")  # names with digits in them, not numbers


def summary_mean(run: Path) -> pd.Series:
    """A summary.csv's Mean row, read with pandas alone (the oracle for the findings' numbers)."""
    table = pd.read_csv(run / "summary.csv", header=[0, 1], index_col=0)
    return table.loc["Mean"]


def string_literals(source: str) -> list[str]:
    """The literal text of every string in a module (an f-string's format specs, such as .3f, left out)."""
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    specs = {id(node.format_spec) for node in ast.walk(tree) if isinstance(node, ast.FormattedValue) and node.format_spec}
    spec_parts = {id(part) for node in ast.walk(tree) if id(node) in specs for part in ast.walk(node)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in spec_parts | docstrings]


def test_the_findings_templates_type_no_digit():
    literals = string_literals(Path(findings_module.__file__).read_text())
    typed = [text for text in literals if re.search(r"\d", NAMES.sub("", text))]
    assert not typed, f"findings.py types numbers: {typed}"


def test_the_findings_page_types_no_result():
    notebook = nbformat.read(ROOT / "notebooks" / "experiment.ipynb", as_version=4)
    typed = []
    for cell in notebook.cells:
        text = cell.source
        for label in LABELS:
            text = text.replace(label, "")
        typed += [(cell.cell_type, match) for match in TYPED.findall(text)]
    assert not typed, f"notebooks/experiment.ipynb types results: {typed}"
    chapter = (ROOT / "book" / "experiment.md").read_text()
    found = chapter[chapter.index("## What we found"):]
    found = found[:found.index("\n## ", 3)]
    assert not re.search(r"\d", found), "book/experiment.md's findings section types a number"


def test_the_formatters_round_and_sign():
    assert value(0.61549) == "0.615" and value(84.3346, "rank_distance") == "84.3" and value(0.5479, "share") == "0.55"
    assert signed(0.0152) == "+0.015" and signed(-0.0028) == "\u22120.003" and signed(-0.0001) == "0.000"
    assert span([0.7849, 0.8001, 0.797]) == "0.785–0.800" and span([0.61231, 0.61249]) == "0.612"


@pytest.fixture(scope="module")
def cpu_findings() -> str:
    return findings(Experiment.load(CPU), n_resamples=200)


def test_the_findings_state_the_committed_numbers(cpu_findings):
    """Numbers read straight from the committed summary files, and each claim's mark from the test, are in the
    text as the tables round them."""
    zero = summary_mean(CPU / "evaluations" / LEAD / "zero-shot")
    assert f"Mul. mAP {zero[('multi', 'map')]:.3f} → " in cpu_findings
    assert f"rank distance {zero[('multi', 'rank_distance')]:.1f} → " in cpu_findings
    hybrid = pd.concat([summary_mean(CPU / "evaluations" / LEAD / f"hybrid-s{seed}") for seed in range(3)], axis=1)
    mono = pd.concat([summary_mean(CPU / "evaluations" / LEAD / f"mono-s{seed}") for seed in range(3)], axis=1)
    means = f"Hybrid {hybrid.loc[('mono', 'map')].mean():.3f}, X-X-mono {mono.loc[('mono', 'map')].mean():.3f}"
    assert f"Mo.: Hybrid ≥ X-X-mono > X-Y: **inconclusive**. Means: {means}" in cpu_findings
    verdicts, _ = check_claims(Experiment.load(CPU), LEAD, n_resamples=200)
    for claim, verdict in zip(verdicts.claim, verdicts.verdict):
        assert f"{claim}: **{verdict}**" in cpu_findings
    stages = json.loads((CPU / "experiment.json").read_text())["stages"]
    trained = sum(s["computed_seconds"] for s in stages if s["kind"] == "train") / 60
    assert f"{sum(s['kind'] == 'train' for s in stages)} trainings {trained:.1f} min" in cpu_findings
    assert "ours 300 question ids" in cpu_findings  # the cpu preset's subset, named as such beside the paper's pools


def test_the_findings_follow_a_changed_result(tmp_path, cpu_findings):
    """Change one committed number in a copy of the results: the text changes with it."""
    copy = tmp_path / "cpu"
    shutil.copytree(CPU, copy)
    summary = copy / "evaluations" / LEAD / "zero-shot" / "summary.csv"
    table = pd.read_csv(summary, header=[0, 1], index_col=0)
    table.loc["Mean", ("multi", "map")] = 0.123456
    table.to_csv(summary)
    changed = findings(Experiment.load(copy), n_resamples=200)
    assert "Mul. mAP 0.123 → " in changed and "Mul. mAP 0.123 → " not in cpu_findings


def test_the_cost_names_the_machine_of_each_stage_and_its_cpu_time(tmp_path, cpu_findings):
    """An experiment resumed on another machine: the cost line names every machine with its stages, from the
    stages' own hardware, and sums the CPU time recorded; a record without either keeps the last invocation's."""
    assert f"the last invocation ran on {machine_label(json.loads((CPU / 'experiment.json').read_text())['hardware'])}" \
        in cpu_findings and "CPU min" not in cpu_findings
    copy = tmp_path / "cpu"
    shutil.copytree(CPU, copy)
    record = json.loads((copy / "experiment.json").read_text())
    first = {"processor": "AMD EPYC", "isa": "avx2 avx512_bf16", "cpu_count": 2, "device": "cpu"}
    second = {"processor": "Intel Xeon", "isa": "amx_bf16", "cpu_count": 2, "device": "cpu"}
    stages = record["stages"]
    for number, stage in enumerate(stages):
        stage["hardware"] = first if number < 5 else second
        stage["cpu_seconds"] = 60.0 if number % 2 else None
    (copy / "experiment.json").write_text(json.dumps(record))
    experiment = Experiment.load(copy)
    machines = stage_machines(experiment)
    assert machines["total"].to_dict() == {machine_label(second): len(stages) - 5, machine_label(first): 5}
    times = stage_times(experiment)
    timed = len(stages) // 2
    assert times.loc["total", "CPU minutes"] == timed and times.loc["total", "CPU unknown"] == len(stages) - timed
    text = findings(experiment, n_resamples=200)
    assert (f"computed on {machine_label(second)} ({len(stages) - 5} stages); {machine_label(first)} (5 stages)"
            in text)
    assert f"{timed:.1f} CPU min for the {timed} stages whose CPU time was recorded" in text


def test_a_shorter_preset_is_told_what_it_cannot_decide(tmp_path):
    """The committed cpu results against a copy holding only their first seed: every relation the three seeds
    decide, one seed leaves inconclusive, and the note names each of them with both marks."""
    copy = tmp_path / "cpu"
    shutil.copytree(CPU, copy)
    for folder in (copy / "evaluations" / LEAD).iterdir():
        if not folder.name.endswith("-s0") and folder.name != "zero-shot":
            shutil.rmtree(folder)
    _, full = check_claims(Experiment.load(CPU), LEAD, n_resamples=200)
    _, one_seed = check_claims(Experiment.load(copy), LEAD, n_resamples=200)
    compared = compare_marks(one_seed, full)
    decided = full.mark != INCONCLUSIVE
    assert decided.any() and set(one_seed.mark) == {INCONCLUSIVE}
    assert (compared.outcome[decided.to_numpy()] == CANNOT_DECIDE).all()
    assert (compared.outcome[~decided.to_numpy()] == NEITHER).all()
    note = shorter_preset_note(compared, "one-seed")
    assert f"it leaves {decided.sum()} inconclusive that this one decides" in note
    for row in full[decided].itertuples():
        assert f"{row.comparison}: inconclusive in `one-seed`, {row.mark} here" in note
    assert shorter_preset_note(compare_marks(full, full), "cpu").count("as this experiment does") == 1


def test_the_scifact_note_reads_both_zero_shot_runs():
    note = scifact_scale_note(Experiment.load(CPU), ROOT / "results" / "zero-shot" / "scifact", published_ndcg=0.7)
    assert "scores 0.700 nDCG@10" in note
    committed = pd.read_csv(ROOT / "results" / "zero-shot" / "scifact" / "summary.csv", index_col=0).loc["Mean", "ndcg@10"]
    assert f"our offline copy scores {committed:.3f} (fp32" in note and f"{0.7 - committed:.3f} lower" in note
    experiment_run = pd.read_csv(CPU / "beir" / "scifact" / "zero-shot" / "summary.csv", index_col=0)
    assert f"the zero-shot model scores {experiment_run.loc['Mean', 'ndcg@10']:.3f}." in note


def test_the_findings_of_an_experiment_in_progress_leave_out_what_needs_missing_runs(tmp_path):
    """A results folder partway through, Hybrid not trained yet in either direction (as the conclusive run's is
    after its first runs): the text is written from what is there, without the parts that need Hybrid."""
    partial = tmp_path / "cpu"
    shutil.copytree(CPU, partial)
    for folder in sorted(partial.rglob("hybrid*"), reverse=True):
        shutil.rmtree(folder)
    experiment = Experiment.load(partial)
    checked = {direction: check_claims(experiment, direction, n_resamples=100) for direction in experiment.directions}
    assert all(verdicts.empty for verdicts, _ in checked.values())
    text = findings(experiment, checked, n_resamples=100)
    assert "**Fine-tuning itself.**" in text and "**What it cost**" in text
    assert "The paper's claims" not in text and "Per language" not in text and "Stratified" not in text
    assert "Hybrid has no SciFact run yet" in text and "The other direction" not in text
