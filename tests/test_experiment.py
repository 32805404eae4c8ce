"""The reproduced experiment: presets → stages, the cached runner, per-query metrics, statistics, claims."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hybridir.cli import main
from hybridir.evaluation.lareqa import lareqa_results
from hybridir.evaluation.run import EvaluationConfig
from hybridir.experiment.claims import (ALIKE, BEYOND, CANNOT_DECIDE, CLAIMS, FAILS, HOLDS, INCONCLUSIVE, NEITHER,
                                      NOT_RUN, OTHERWISE, check_claims, claim_mark, compare_marks, decide)
from hybridir.experiment.design import Direction, ExperimentPreset
from hybridir.presets import PRESETS
from hybridir.provenance import hardware
from hybridir.experiment.report import (Experiment, agreement_with_the_paper, alpha_sweep, best_strategy,
                                        best_strategy_agreement,
                                        cross_pair_make_up, curves, format_mean_std, per_language_beside_the_paper,
                                        language_bias, language_fairness, parse_run, stage_times, strategy_table,
                                        training_losses)
from hybridir.experiment.runner import _independent_runs, _threads_per_job, reproduce, stages, training_folder
from hybridir.experiment.statistics import paired_permutation_p, seed_query_test
from hybridir.training.config import TrainingConfig

# ---------------------------------------------------------------- presets and stages


def test_the_cpu_preset_expands_to_its_committed_experiment():
    planned = stages(PRESETS["cpu"].experiment)
    trains = [s for s in planned if s.kind == "train"]
    lead = [s.run for s in trains if s.direction.name == "mlqa-r_to_xquad-r"]
    assert sorted(lead) == sorted([f"{st}-s{seed}" for st in ("mono", "cross", "hybrid") for seed in (0, 1, 2)]
                                  + ["hybrid-a0.25-s0", "hybrid-a0.75-s0"])
    assert sorted(s.run for s in trains if s.direction.name == "xquad-r_to_mlqa-r") == ["cross-s0", "hybrid-s0",
                                                                                      "mono-s0"]
    # every run's training config differs only in what the stage says; α only for the sweep
    assert {s.training.train[0] for s in trains if s.direction.name == "mlqa-r_to_xquad-r"} == {"mlqa-r"}
    assert [s.training.alpha for s in trains if "-a" in s.run] == [0.25, 0.75]
    assert all(s.training.alpha is None for s in trains if "-a" not in s.run)
    # each trained model is evaluated right after training, on the other dataset, with per-query output
    for train, evaluation in zip(planned, planned[1:]):
        if train.kind == "train":
            assert evaluation.kind == "evaluate" and evaluation.run == train.run
            assert evaluation.evaluation.dataset == train.direction.evaluate and evaluation.evaluation.per_query
    # the zero-shot evaluations first; BEIR on the zero-shot model and the first seed of each strategy
    assert [s.name for s in planned[:3]] == ["evaluate mlqa-r_to_xquad-r zero-shot",
                                             "evaluate xquad-r_to_mlqa-r zero-shot", "beir scifact zero-shot"]
    beir = [s for s in planned if s.kind == "beir"]
    assert [s.run for s in beir] == ["zero-shot", "mono-s0", "cross-s0", "hybrid-s0"]
    assert beir[0].training is None and all(s.training.train == ["mlqa-r"] for s in beir[1:])
    assert len(planned) == 14 + 16 + 4
    # every model is read at the base model's length, not a trained run's training length (128)
    assert {s.evaluation.max_length for s in planned if s.evaluation} == {512}


def test_the_conclusive_preset_expands_to_issue_17_s_design():
    """Four strategies (X-X included) × 8 seeds in the lead direction, × 3 in the reverse; the α sweep and BEIR
    with 3 seeds; 8 stratified hybrid seeds; every evaluation on the full pools with per-query output; the
    lead's main runs first, seed by seed."""
    planned = stages(PRESETS["conclusive"].experiment)
    trains = [s for s in planned if s.kind == "train"]
    lead = [s.run for s in trains if s.direction.name == "mlqa-r_to_xquad-r"]
    strategies = ("mono", "cross", "hybrid", "standard")
    assert lead[:32] == [f"{st}-s{seed}" for seed in range(8) for st in strategies]
    assert lead[32:] == ([f"hybrid-a{a}-s{seed}" for seed in range(3) for a in (0.25, 0.75)]
                         + [f"hybrid-stratified-s{seed}" for seed in range(8)])
    assert [s.run for s in trains if s.direction.name == "xquad-r_to_mlqa-r"] == [
        f"{st}-s{seed}" for seed in range(3) for st in strategies]
    assert {s.training.mono_draw for s in trains if "stratified" in s.run} == {"stratified"}
    assert {s.training.mono_draw for s in trains if "stratified" not in s.run} == {"coin"}
    beir = [s.run for s in planned if s.kind == "beir"]
    assert beir == ["zero-shot"] + [f"{st}-s{seed}" for seed in range(3) for st in strategies]
    evaluations = [s.evaluation for s in planned if s.kind == "evaluate"]
    assert all(e.max_question_ids is None and e.per_query for e in evaluations)
    assert all(s.evaluation.per_query for s in planned if s.kind == "beir")
    assert len(trains) == 32 + 6 + 8 + 12


@pytest.mark.parametrize("run, expected", [
    ("mono-s2", {"strategy": "mono", "alpha": 1.0, "seed": 2, "sweep": False, "stratified": False}),
    ("cross-s0", {"strategy": "cross", "alpha": 0.0, "seed": 0, "sweep": False, "stratified": False}),
    ("hybrid-a0.25-s0", {"strategy": "hybrid", "alpha": 0.25, "seed": 0, "sweep": True, "stratified": False}),
    ("hybrid-stratified-s7", {"strategy": "hybrid", "alpha": 0.5, "seed": 7, "sweep": False, "stratified": True}),
])
def test_run_names_parse(run, expected):
    assert parse_run(run) == expected


def test_a_bad_run_name_is_refused():
    with pytest.raises(ValueError, match="not a run name"):
        parse_run("hybrid-seed0")


# ---------------------------------------------------------------- statistics, by hand


def test_identical_strategies_differ_by_nothing():
    a = np.tile(np.random.default_rng(0).random(50), (3, 1))
    test = seed_query_test(a, a.copy())
    assert test.difference == 0 and test.p == 1.0 and paired_permutation_p(a, a.copy(), n_resamples=999) == 1.0


def test_seed_noise_is_not_called_significant_as_a_queries_only_test_would():
    """Strategies equal in expectation, runs shifted by their seed: a per-query test sees a constant
    difference (p tiny); a test with seeds random sees the seeds disagree (p large)."""
    queries = np.random.default_rng(1).random(200)
    a = queries + np.array([[0.03], [-0.02], [0.01]])
    b = queries + np.array([[-0.03], [0.02], [0.0]])
    assert paired_permutation_p(a, b, n_resamples=999) < 0.01
    assert seed_query_test(a, b).p > 0.2


def test_statistics_refuse_runs_on_different_queries():
    with pytest.raises(ValueError, match="different queries"):
        seed_query_test(np.zeros((2, 5)), np.zeros((2, 6)))


def test_beir_relations_are_decided_by_the_seed_aware_test_on_per_query_pairs(tmp_path):
    """Per-query nDCG@10 files in the runner's layout: X-X-mono as good as Hybrid (non-inferiority holds), X-Y
    0.05 better (Hybrid ≥ X-Y does not hold), X-X with one seed (inconclusive); α-sweep runs are not compared."""
    from hybridir.experiment.claims import check_beir

    rng = np.random.default_rng(0)
    difficulty = rng.uniform(0.1, 0.9, 300)

    def write(run: str, shift: float) -> None:
        folder = tmp_path / "beir" / "scifact" / run
        folder.mkdir(parents=True)
        values = difficulty + shift + rng.normal(0, 0.001) + rng.normal(0, 0.01, len(difficulty))
        pd.DataFrame({"query_language": "en", "qid": [f"q{i}" for i in range(len(values))], "ndcg@10": values,
                      "recall@100": 1.0}).to_csv(folder / "per_query.csv.gz", index=False)

    for seed in range(3):
        write(f"mono-s{seed}", 0.0), write(f"hybrid-s{seed}", 0.0), write(f"cross-s{seed}", 0.05)
    write("hybrid-a0.25-s0", -0.5)
    write("standard-s0", 0.0)
    table = check_beir(Experiment(tmp_path)).set_index("comparison")
    assert table.mark.to_dict() == {"Hybrid ≥ X-X-mono": HOLDS, "Hybrid ≥ X-Y": FAILS, "Hybrid ≥ X-X": INCONCLUSIVE}
    assert table.loc["Hybrid ≥ X-X", "seeds"] == "3 vs 1" and set(table.queries) == {300}
    assert table.loc["Hybrid ≥ X-Y", "difference"] == pytest.approx(-0.05, abs=0.005)
    assert check_beir(Experiment(tmp_path), dataset="nfcorpus").empty


@pytest.mark.parametrize("relation, difference, p, equivalent, not_below, worse, mark", [
    (">", 0.01, 0.01, 0.9, 0.0, 1.0, HOLDS), (">", -0.01, 0.01, 0.9, 0.9, 0.0, FAILS),
    (">", 0.001, 0.3, 0.01, 0.0, 1.0, FAILS),  # shown equal within the margin: not greater
    (">", 0.004, 0.3, 0.3, 0.0, 1.0, INCONCLUSIVE),
    ("≥", -0.001, 0.5, 0.01, 0.01, 1.0, HOLDS), ("≥", -0.02, 0.001, 1.0, 1.0, 0.01, FAILS),
    ("≥", -0.004, 0.2, 0.4, 0.3, 0.3, INCONCLUSIVE),
    ("≈", 0.001, 0.6, 0.01, 0.0, 1.0, HOLDS), ("≈", 0.02, 0.001, 0.9, 0.0, 1.0, FAILS),
    ("≈", 0.003, 0.3, 0.2, 0.0, 1.0, INCONCLUSIVE), (">", 0.05, float("nan"), 1.0, 0.0, 1.0, INCONCLUSIVE),
])
def test_relations_get_one_of_three_marks(relation, difference, p, equivalent, not_below, worse, mark):
    """Ties are decided by equivalence and non-inferiority within the margin, never by a missing difference."""
    assert decide(relation, difference, p, equivalent, not_below, worse) == mark


def test_a_shorter_experiments_marks_are_set_beside_the_longer_ones():
    """Every outcome of compare_marks, and a relation the shorter experiment did not train counted as not run."""
    def relations(marks: dict[str, str]) -> pd.DataFrame:
        return pd.DataFrame([{"claim": "c", "comparison": name, "setting": "multi", "metric": "map", "mark": mark,
                              "seeds": "8 vs 8"} for name, mark in marks.items()])

    longer = relations({"a": HOLDS, "b": HOLDS, "c": FAILS, "d": INCONCLUSIVE, "e": INCONCLUSIVE, "f": HOLDS})
    shorter = relations({"a": HOLDS, "b": INCONCLUSIVE, "c": HOLDS, "d": FAILS, "e": INCONCLUSIVE})
    compared = compare_marks(shorter, longer).set_index("comparison")
    assert compared.outcome.to_dict() == {"a": ALIKE, "b": CANNOT_DECIDE, "c": OTHERWISE, "d": BEYOND, "e": NEITHER,
                                          "f": NOT_RUN}
    assert compared.loc["c", ["mark shorter", "mark longer"]].tolist() == [HOLDS, FAILS]
    assert set(compare_marks(pd.DataFrame(), longer).outcome) == {NOT_RUN}


def test_a_claim_holds_when_all_its_relations_do_and_fails_when_one_fails():
    assert claim_mark([HOLDS, HOLDS]) == HOLDS
    assert claim_mark([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE
    assert claim_mark([INCONCLUSIVE, FAILS]) == FAILS


# ---------------------------------------------------------------- per-query metrics on real data


def test_per_query_metrics_average_to_the_tidy_table(mlqa):
    from hybridir.data.lareqa import subset_lareqa

    data = subset_lareqa(mlqa, 15)
    rng = np.random.default_rng(0)
    questions = rng.standard_normal((len(data.questions), 8)).astype(np.float32)
    candidates = rng.standard_normal((len(data.candidates), 8)).astype(np.float32)
    tidy, per_query = lareqa_results(data, questions, candidates)
    for setting in ("mono", "multi"):
        ours = per_query[per_query.setting == setting].groupby("query_language")["map"].mean()
        expected = tidy[(tidy.setting == setting) & (tidy.metric == "map")].set_index("query_language")["value"]
        pd.testing.assert_series_equal(ours, expected.loc[ours.index], check_names=False)
    # Cr.: a row per (query, target language with an answer); their mean per cell is the table's cell
    cross = per_query[per_query.setting == "cross"]
    assert (cross.candidate_language != cross.query_language).all()
    cells = cross.groupby(["query_language", "candidate_language"])["map"].mean()
    table = tidy[(tidy.setting == "cross") & (tidy.metric == "map")].set_index(["query_language",
                                                                                 "candidate_language"])["value"]
    pd.testing.assert_series_equal(cells, table.loc[cells.index], check_names=False)
    # top_language by brute force for every multi query of one language
    multi = per_query[(per_query.setting == "multi") & (per_query.query_language == "de")]
    rows = np.flatnonzero(data.questions.language.to_numpy() == "de")
    scores = questions[rows] @ candidates.T
    relevance = data.relevance_matrix(rows).toarray()
    for i, qid in enumerate(data.questions.qid.to_numpy()[rows]):
        best = max(np.flatnonzero(relevance[i]), key=lambda c: (scores[i, c], -c))
        assert multi.set_index("qid").top_language[qid] == data.candidates.language.iloc[best]


# ---------------------------------------------------------------- the runner, cached and resumed


def tiny_preset(model: Path, beir: str | None = None) -> ExperimentPreset:
    training = TrainingConfig(model=str(model), max_steps=4, batch_size=4, eval_steps=2, max_length=32,
                              validation="none", patience=None, precision="fp32")
    return ExperimentPreset(name="tiny", description="plumbing", training=training,
                            directions=(Direction("mlqa-r", "xquad-r"),), seeds=(0,), other_seeds=(),
                            strategies=("hybrid",),
                            evaluation=EvaluationConfig(max_question_ids=4, per_query=True, precision="fp32"),
                            curve_question_ids=3, beir=(beir,) if beir else ())


def tiny_beir(root: Path) -> Path:
    """A BEIR-format directory: 6 documents, 2 queries."""
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"document {i}"})
                                               + "\n" for i in range(6)))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n"
                                                for i in range(2)))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td3\t1\n")
    return root


def test_the_runner_caches_finished_stages_and_resumes_or_restarts_unfinished_ones(tmp_path, tiny_xlmr_folder):
    from interruption import StopAt  # tests/ is on sys.path

    from hybridir.training.trainer import train

    beir = tiny_beir(tmp_path / "tiny-beir")
    preset, results, work = tiny_preset(tiny_xlmr_folder, str(beir)), tmp_path / "results", tmp_path / "work"
    planned = stages(preset)
    assert [s.name for s in planned] == ["evaluate mlqa-r_to_xquad-r zero-shot", f"beir {beir} zero-shot",
                                         "train mlqa-r_to_xquad-r hybrid-s0", "evaluate mlqa-r_to_xquad-r hybrid-s0",
                                         f"beir {beir} hybrid-s0"]
    # an interrupted run (stopped after step 2, its checkpoint saved) is resumed, not restarted
    folder = training_folder(planned[2], work)
    train(planned[2].training, folder, callbacks=[StopAt(2)])
    (folder / "run.json").unlink()  # a killed run leaves its checkpoints and config.json only
    shutil.rmtree(folder / "model")
    first = reproduce(preset, results, work)
    assert [s["cached"] for s in first["stages"]] == [False] * 5
    record = json.loads((folder / "run.json").read_text())
    assert record["steps"] == 4 and len(record["train_loss"]) == 4
    assert not (folder / "checkpoints").exists() and (folder / "model").is_dir()  # finished: the model only
    run_folder = results / "runs" / "mlqa-r_to_xquad-r" / "hybrid-s0"
    # the interrupted segment ran without the curve callback; the resumed one adds its checkpoints, not step 0
    assert pd.read_csv(run_folder / "curve.csv").step.tolist() == [4]
    assert {p.name for p in (results / "beir" / beir.name).iterdir()} == {"zero-shot", "hybrid-s0"}

    again = reproduce(preset, results, work)
    assert [s["cached"] for s in again["stages"]] == [True] * 5

    # a run stopped before its first checkpoint starts again instead of refusing its folder
    shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (run_folder / "run.json").unlink()  # not finished in the results either (else they would stand for it)
    restarted = reproduce(preset, results, work)
    assert restarted["stages"][2]["cached"] is False
    assert json.loads((folder / "run.json").read_text())["status"] == "finished"
    assert pd.read_csv(run_folder / "curve.csv").step.tolist() == [0, 2, 4]  # step 0 and every checkpoint


def test_two_jobs_run_independent_runs_side_by_side_into_the_same_cache(tmp_path, tiny_xlmr_folder):
    """--jobs 2: each run (its training, then its evaluations) in its own single-threaded process; the record
    lists the stages in plan order, and a one-job rerun finds every stage cached."""
    beir = tiny_beir(tmp_path / "tiny-beir")
    preset = replace(tiny_preset(tiny_xlmr_folder, str(beir)), strategies=("hybrid", "mono"))
    results, work = tmp_path / "results", tmp_path / "work"
    groups = [[stage.name for stage in group] for group in _independent_runs(stages(preset))]
    assert groups == [["evaluate mlqa-r_to_xquad-r zero-shot"], [f"beir {beir} zero-shot"],
                      ["train mlqa-r_to_xquad-r hybrid-s0", "evaluate mlqa-r_to_xquad-r hybrid-s0",
                       f"beir {beir} hybrid-s0"],
                      ["train mlqa-r_to_xquad-r mono-s0", "evaluate mlqa-r_to_xquad-r mono-s0", f"beir {beir} mono-s0"]]
    parallel = reproduce(preset, results, work, jobs=2)
    assert parallel["jobs"] == 2 and parallel["threads_per_job"] == torch.get_num_threads() // 2
    assert [s["stage"] for s in parallel["stages"]] == [stage.name for stage in stages(preset)]
    assert not any(s["cached"] for s in parallel["stages"])
    again = reproduce(preset, results, work)
    assert all(s["cached"] for s in again["stages"])


def test_results_continued_on_another_machine_train_only_the_runs_they_do_not_hold(tmp_path, tiny_xlmr_folder):
    """The work folder (models) stays behind, the results folder travels: a run whose evaluations are all in
    it is not trained again; one missing an evaluation is trained and evaluated again, and only that one."""
    beir = tiny_beir(tmp_path / "tiny-beir")
    preset = replace(tiny_preset(tiny_xlmr_folder, str(beir)), strategies=("hybrid", "mono"))
    results, work = tmp_path / "results", tmp_path / "work"
    reproduce(preset, results, work)
    shutil.rmtree(work)  # another machine: the same cache path, no model in it
    elsewhere = reproduce(preset, results, work)
    assert [s["stage"] for s in elsewhere["stages"] if not s["cached"]] == []
    assert not work.exists()

    shutil.rmtree(results / "beir" / beir.name / "mono-s0")
    third = reproduce(preset, results, work)
    computed = [s["stage"] for s in third["stages"] if not s["cached"]]
    assert computed == ["train mlqa-r_to_xquad-r mono-s0", f"beir {beir} mono-s0"]
    assert (results / "beir" / beir.name / "mono-s0" / "summary.csv").is_file()

    def computed_elsewhere() -> list[str]:
        shutil.rmtree(work, ignore_errors=True)
        return [s["stage"] for s in reproduce(preset, results, work)["stages"] if not s["cached"] and "train" in s["stage"]]

    # a record left by another training (older code) does not stand for this one
    record = results / "runs" / "mlqa-r_to_xquad-r" / "hybrid-s0" / "run.json"
    saved = json.loads(record.read_text())
    record.write_text(json.dumps(saved | {"code_digest": "0" * 16}))
    assert computed_elsewhere() == ["train mlqa-r_to_xquad-r hybrid-s0"]
    # evaluations of two different models (a retraining cut off while re-evaluating) train again
    provenance = results / "beir" / beir.name / "hybrid-s0" / "provenance.json"
    provenance.write_text(json.dumps(json.loads(provenance.read_text()) | {"model_fingerprint": "f" * 16}))
    assert computed_elsewhere() == ["train mlqa-r_to_xquad-r hybrid-s0"]
    assert json.loads(provenance.read_text())["model_fingerprint"] != "f" * 16  # evaluated again with the model


@pytest.mark.parametrize(("jobs", "threads", "gpu", "message"), [
    (0, 2, False, "--jobs must be a positive integer, got 0"),
    (3, 2, False, "--jobs 3 exceeds this machine's 2 CPU threads; use at most 2"),
    (2, 2, True, "--jobs > 1 shares the CPU cores between runs; on a GPU use --jobs 1"),
])
def test_a_job_count_the_machine_cannot_share_fails_in_one_line(jobs, threads, gpu, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _threads_per_job(jobs, threads, gpu)


def test_a_changed_training_setting_is_a_new_run(tmp_path, tiny_xlmr_folder):
    preset = tiny_preset(tiny_xlmr_folder)
    other = replace(preset, training=replace(preset.training, learning_rate=1e-4))
    assert training_folder(stages(preset)[1], tmp_path) != training_folder(stages(other)[1], tmp_path)


def test_the_training_cache_key_changes_with_the_code_that_shapes_a_run_and_only_with_it(tmp_path, tiny_xlmr_folder,
                                                                                         monkeypatch):
    """The key digests hybridir's training code (data, models, sampling, training): a sampler fix trains again,
    an unchanged tree or a change elsewhere (the book) keeps the cached run."""
    from hybridir import provenance

    package = tmp_path / "hybridir"
    shutil.copytree(provenance.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__", "*.csv"))
    monkeypatch.setattr(provenance, "PACKAGE_DIR", package)
    stage = stages(tiny_preset(tiny_xlmr_folder))[1]
    before = training_folder(stage, tmp_path)
    assert training_folder(stage, tmp_path) == before
    (package / "book.py").write_text((package / "book.py").read_text() + "\n# a comment\n")
    assert training_folder(stage, tmp_path) == before
    sampler = package / "sampling" / "samplers.py"
    sampler.write_text(sampler.read_text() + "\n# a fix\n")
    assert training_folder(stage, tmp_path) != before


def test_committed_records_name_no_machine_path():
    """Every path in results/ is relative to its run or results folder, or to $HYBRIDIR_CACHE_DIR."""
    root = Path(__file__).resolve().parents[1] / "results"
    found = []

    def visit(value, where):
        if isinstance(value, dict):
            for item in value.values():
                visit(item, where)
        elif isinstance(value, list):
            for item in value:
                visit(item, where)
        elif isinstance(value, str) and (value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", value)):
            found.append(f"{where}: {value}")

    records = sorted(root.rglob("*.json"))
    assert len(records) > 50
    for path in records:
        visit(json.loads(path.read_text()), path.relative_to(root))
    for path in sorted(root.rglob("*.txt")):  # benchmark outputs
        found += [f"{path.relative_to(root)}: {line}" for line in path.read_text().splitlines()
                  if re.search(r"(^|[\s'\"(=])/(root|home|work|tmp|Users)/", line)]
    assert not found, found[:5]


def test_the_paper_preset_evaluates_miracl_in_its_15_languages_after_the_beir_models(tmp_path, capsys):
    from hybridir.experiment.design import preset_with_miracl_corpus
    from hybridir.experiment.runner import MIRACL

    paper = PRESETS["paper"].experiment
    planned = stages(paper)
    miracl = [stage for stage in planned if stage.kind == "miracl"]
    beir = [stage for stage in planned if stage.kind == "beir"]
    assert [stage.run for stage in miracl] == [stage.run for stage in beir]  # zero-shot, then each BEIR model
    assert miracl[0].name == "miracl zero-shot" and len({stage.name for stage in planned}) == len(planned)
    config = miracl[0].evaluation
    assert (config.dataset, len(config.languages), config.miracl_corpus) == ("miracl", 15, "miracl/miracl-corpus")
    assert "en" not in config.languages and config.batch_size == paper.evaluation.batch_size
    local = preset_with_miracl_corpus(paper, str(tmp_path))
    assert {s.evaluation.miracl_corpus for s in stages(local) if s.kind == "miracl"} == {str(tmp_path)}
    assert MIRACL == "miracl" and not [s for s in stages(PRESETS["cpu"].experiment) if s.kind == "miracl"]
    assert main(["reproduce", "--preset", "smoke", "--miracl-corpus", str(tmp_path), "--output",
                 str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "evaluates no MIRACL language, so --miracl-corpus has nothing" in error
    with pytest.raises(ValueError, match="MIRACL has no dev language 'xx'"):
        replace(paper, miracl=("sw", "xx"))


def test_the_paper_preset_mixes_mmarco_into_every_run_and_reproduce_can_change_it(tmp_path, capsys):
    from hybridir.experiment.design import preset_with_training_data

    paper = PRESETS["paper"].experiment
    trained = {tuple(stage.training.train) for stage in stages(paper) if stage.training}
    assert trained == {("mlqa-r", "mmarco"), ("xquad-r", "mmarco")}
    assert PRESETS["paper"].training.train == ["mlqa-r", "mmarco"]  # hybridir train --preset paper: one such run
    assert PRESETS["cpu"].training.train == ["mlqa-r"]
    own = tmp_path / "own.jsonl"
    own.write_text('{"id": 1, "language": "de", "query": "q", "positive": "p"}\n')
    changed = preset_with_training_data(paper, ["mmarco:de,en", str(own)], mmarco_source=str(tmp_path))
    assert {tuple(s.training.train) for s in stages(changed) if s.training} == {
        ("mlqa-r", "mmarco:de,en", str(own)), ("xquad-r", "mmarco:de,en", str(own))}
    assert all(s.training.mmarco_source == str(tmp_path) for s in stages(changed) if s.training)
    alone = preset_with_training_data(paper, [], mmarco_source=None)
    assert {tuple(s.training.train) for s in stages(alone) if s.training} == {("mlqa-r",), ("xquad-r",)}
    assert main(["reproduce", "--preset", "paper", "--also-train", "mlqa-r", "--output", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "--train names a source twice: ['mlqa-r', 'mlqa-r']" in error
    assert not (tmp_path / "o").exists()


def test_reproduce_errors_are_one_line(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["reproduce", "--preset", "smoke", "--output", str(target)]) == 2
    assert capsys.readouterr().err.strip() == f"hybridir reproduce: error: --output {target} is a file; give a folder"


# ---------------------------------------------------------------- the smoke preset on real data, end to end


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("smoke") / "results"
    assert main(["reproduce", "--preset", "smoke", "--output", str(output)]) == 0
    return output


def test_smoke_preset_runs_every_stage_then_takes_all_from_the_cache(smoke_results, capsys):
    first = json.loads((smoke_results / "experiment.json").read_text())["stages"]
    capsys.readouterr()
    assert main(["reproduce", "--preset", "smoke", "--output", str(smoke_results)]) == 0
    planned = len(stages(PRESETS["smoke"].experiment))
    assert f"{planned} stages ({planned} cached)" in capsys.readouterr().out
    again = json.loads((smoke_results / "experiment.json").read_text())["stages"]
    # A cached stage keeps the time it took when it was computed, and names the machine from its own output.
    assert [s["computed_seconds"] for s in again] == [s["seconds"] for s in first]
    assert [s["cpu_seconds"] for s in again] == [s["cpu_seconds"] for s in first]
    assert all(s["cpu_seconds"] > 0 for s in first if s["kind"] == "train")
    assert all(s["hardware"] == hardware() for s in first + again)
    assert all(not s["cached"] for s in first) and all(s["cached"] for s in again)


def test_smoke_results_give_every_table_of_the_experiment_page(smoke_results):
    experiment = Experiment.load(smoke_results)
    lead, reverse = experiment.directions
    assert (lead, reverse) == ("mlqa-r_to_xquad-r", "xquad-r_to_mlqa-r")
    table = strategy_table(experiment, lead)
    assert list(table.index) == ["zero-shot", "X-X-mono", "X-Y", "Hybrid", "X-X"]
    assert table["seeds"]["seeds"].tolist() == [1, 2, 2, 2, 2]
    assert format_mean_std(table).loc["Hybrid", "Mo. mAP"].count("±") == 1
    assert set(strategy_table(experiment, reverse)["seeds"]["seeds"]) == {1}
    assert alpha_sweep(experiment, lead)["α"].tolist() == [0.0, 0.25, 0.5, 1.0]
    bias = language_bias(experiment, lead)
    assert bias.index[-1] == "Mean" and ((bias >= 0) & (bias <= 1)).all().all()
    fairness = language_fairness(experiment, lead)
    assert list(fairness.index) == ["zero-shot", "X-X-mono", "X-Y", "Hybrid", "X-X"]
    assert fairness["PEER@100"].between(0, 1).all() and fairness["same language first"].between(0, 1).all()
    assert (fairness["rank distance (geometric mean)"] <= fairness["rank distance"]).all()  # AM-GM, per language
    assert fairness.loc["Hybrid", "same language first"] == pytest.approx(bias.loc["Mean", "Hybrid"])
    assert set(curves(experiment, lead).step) == {0, 2, 4}
    assert set(training_losses(experiment, lead).loss_kind) == {"train", "validation"}
    make_up = cross_pair_make_up(experiment, lead)
    assert "en" in make_up.columns and "mono-s0" not in make_up.index
    assert stage_times(experiment).loc["total", "stages"] == len(stages(PRESETS["smoke"].experiment))
    verdicts, relations = check_claims(experiment, lead, n_resamples=500)
    assert verdicts.claim.tolist() == [claim.text for claim in CLAIMS]  # X-X trained: its claims too
    assert set(relations.seeds) == {"2 vs 2"} and relations["p"].between(0, 1).all()
    assert set(relations.mark) <= {HOLDS, FAILS, INCONCLUSIVE} and set(verdicts.verdict) <= {HOLDS, FAILS, INCONCLUSIVE}
    strict = relations.comparison.str.contains(" > ")
    assert relations["p Holm"][strict].notna().all() and (relations["p Holm"][strict] >= relations.p[strict]).all()
    assert relations["p Holm"][~strict].isna().all()


def test_smoke_results_give_findings_for_every_part_of_the_experiment(smoke_results):
    from hybridir.experiment.findings import findings, int_span
    from hybridir.experiment.report import stratified_spread

    experiment = Experiment.load(smoke_results)
    lead = experiment.directions[0]
    text = findings(experiment, n_resamples=200)
    for part in ("Fine-tuning itself", "The paper's claims", "Effect sizes against the paper's", "Per language",
                 "Along training", "α sweep", "Stratified mono draws", "The other direction, XQuAD-R → MLQA-R",
                 "What it cost"):
        assert f"**{part}" in text, part
    assert "Against standard fine-tuning: Hybrid ≥ X-X on Mo., > on Cr. and Mul.: **" in text
    assert "BEIR" not in text  # the smoke preset evaluates no BEIR dataset
    counts = {draw: [json.loads((smoke_results / "runs" / lead / f"hybrid{draw}-s{seed}" / "run.json").read_text())
                     ["batches"]["strategy"].get("cross", 0) for seed in (0, 1)] for draw in ("", "-stratified")}
    assert (f"drew {int_span(min(counts['']), max(counts['']))} X-Y batches with the paper's coin, "
            f"{int_span(min(counts['-stratified']), max(counts['-stratified']))} stratified") in text
    spread = stratified_spread(experiment, lead)
    assert spread.seeds.tolist() == [2, 2] and list(spread.index) == ["coin", "stratified"]


def test_per_language_tables_put_the_papers_rows_beside_our_seed_means(smoke_results):
    from hybridir.paper import paper_summary

    experiment = Experiment.load(smoke_results)
    lead = experiment.directions[0]
    table = per_language_beside_the_paper(experiment, lead, "multi", "rank_distance")
    assert list(table.index) == list(paper_summary("LaBSE", "xquad-r", "Hybrid").index)  # the paper's order, Mean last
    assert table.loc["ar", ("paper LaBSE", "X-X-mono")] == pytest.approx(332.4)  # Table 7 as printed
    means = strategy_table(experiment, lead)["mean"]["rank distance"]
    for strategy in ("X-X-mono", "X-Y", "Hybrid", "X-X"):
        assert table.loc["Mean", ("ours", strategy)] == pytest.approx(means[strategy])
    assert ("paper LaBSE", "X-X") not in table.columns  # the paper trained no X-X
    measures = agreement_with_the_paper(experiment, lead)
    assert list(measures.index.get_level_values("paper model").unique()) == ["XLM-R", "LaBSE"]
    assert measures["Kendall τ (mean over languages)"].between(-1, 1).all()
    assert measures["same sign"].str.endswith("of 22").all()  # 11 languages × 2 pure strategies
    agreement = best_strategy_agreement(experiment, lead)
    assert agreement.loc["rank distance", "best on Mean: paper LaBSE"] == "Hybrid"
    assert agreement["same best as LaBSE"].str.endswith("of 11").all()


def test_best_strategy_takes_the_maximum_or_for_rank_distance_the_minimum():
    table = pd.DataFrame([[1.0, 3.0, 2.0, 5.0]], index=["en"], columns=pd.MultiIndex.from_tuples(
        [("paper", "X-Y"), ("paper", "Hybrid"), ("ours", "X-Y"), ("ours", "Hybrid")]))
    assert best_strategy(table, lower_is_better=False).loc["en"].to_dict() == {"paper": "Hybrid", "ours": "Hybrid"}
    assert best_strategy(table, lower_is_better=True).loc["en"].to_dict() == {"paper": "X-Y", "ours": "X-Y"}


# ---------------------------------------------------------------- one experiment, one way of computing


def test_an_experiment_pins_what_auto_resolves_to_and_keeps_it_when_resumed(tmp_path, monkeypatch):
    """First invocation: this machine's resolution of auto (and of the encoding batch) is pinned. Resumed: the
    recorded choices are kept even where this machine would resolve auto otherwise; a preset that now asks for
    another value, or a machine that only emulates the recorded bf16, stops with a one-line error."""
    from hybridir.experiment.runner import PINNED, pin_machine_choices, with_pinned
    from hybridir.models import precision

    preset = PRESETS["smoke"].experiment
    fresh = pin_machine_choices(preset, None, tmp_path)
    assert set(fresh) == set(PINNED) and "auto" not in fresh.values() and fresh["encoding_batch_size"] >= 1
    recorded = {"training_precision": "bf16", "evaluation_precision": "bf16", "evaluation_engine": "openvino",
                "encoding_batch_size": 16}
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert pin_machine_choices(preset, recorded, tmp_path) == recorded
    pinned = with_pinned(preset, recorded)
    assert (pinned.training.precision, pinned.evaluation.engine, pinned.evaluation.batch_size) == ("bf16", "openvino",
                                                                                                   16)
    assert all(s.training.precision == "bf16" for s in stages(pinned) if s.training)
    asks_fp32 = replace(preset, training=replace(preset.training, precision="fp32"))
    with pytest.raises(ValueError, match=r"was started with training_precision bf16, the preset now asks for fp32"):
        pin_machine_choices(asks_fp32, recorded, tmp_path)
    if not torch.cuda.is_available():
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
        with pytest.raises(RuntimeError, match=r"training_precision and evaluation_precision bf16, which this "
                                               r"machine only emulates"):
            pin_machine_choices(preset, recorded, tmp_path)


def test_a_changed_code_digest_warns_before_stages_are_computed_again(tmp_path):
    from hybridir.experiment.runner import _warn_changed_code

    with pytest.warns(UserWarning, match=r"training code changed since .* every cached run is trained again"):
        _warn_changed_code({"training": "aaa", "evaluation": "bbb"}, {"training": "ccc", "evaluation": "bbb"},
                           tmp_path)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_changed_code({}, {"training": "ccc", "evaluation": "bbb"}, tmp_path)  # a new experiment: silent
        _warn_changed_code({"training": "ccc", "evaluation": "bbb"}, {"training": "ccc", "evaluation": "bbb"},
                           tmp_path)
