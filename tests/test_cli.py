"""The command line: one-line errors for bad input; evaluate writes tidy + summary + provenance."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from hybridir.cli import main
from hybridir.data.miracl import load_miracl_qrels
from hybridir.models.precision import resolve_precision
from hybridir.models.spec import resolve_model
from hybridir.tables import load_run, provenance_note


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset", "squad"], "is neither one of xquad-r, mlqa-r, scifact, miracl nor a BEIR-format directory"),
    (["--dataset", "xquad-r", "--languages", "fr"], "no language fr"),
    (["--dataset", "xquad-r", "--settings", "bilingual"], "unknown setting"),
    (["--dataset", "xquad-r", "--model", "/no/such/folder"], "neither a preset"),
    (["--dataset", "xquad-r", "--model", "xlm-roberta-base", "--model-path", "/no/such/folder"], "does not exist"),
    (["--dataset", "xquad-r", "--candidate-text", "paragraph"], "unknown candidate text"),
    (["--dataset", "miracl", "--languages", "xx"], "no dev language"),
    (["--dataset", "xquad-r", "--batch-size", "0"], "at least 1"),
    (["--dataset", "xquad-r", "--max-length", "4"], "--max-length must be an integer of at least 8"),
    (["--dataset", "scifact", "--max-question-ids", "5"], "--max-question-ids does not apply"),
    (["--dataset", "mlqa-r", "--corpus-dataset", "scifact"], "--corpus-dataset does not apply"),
    (["--dataset", "scifact", "--subset-seed", "3"], "--subset-seed does not apply"),
    (["--dataset", "scifact", "--corpus-dataset", "nosuch"], "--corpus-dataset nosuch is neither one of"),
    (["--dataset", "scifact", "--trec-runs"], "--trec-runs does not apply to --dataset scifact"),
    (["--dataset", "xquad-r", "--encode-devices", "cpu", "cpu"], "--encode-devices does not apply"),
    (["--dataset", "scifact", "--corpus-shard-size", "100"], "--corpus-shard-size does not apply"),
    (["--dataset", "miracl", "--corpus-shard-size", "0"], "--corpus-shard-size must be a positive number"),
    (["--dataset", "miracl", "--languages", "sw", "xx"], "MIRACL has no dev language 'xx'"),
    (["--dataset", "miracl", "--languages", "yo", "--encode-devices", "cuda:7"],
     "'cuda:7' is not a device of this machine"),
])
def test_bad_arguments_give_one_line_errors(capsys, tmp_path, args, message):
    code, _, err = run_cli(capsys, "evaluate", "--output", str(tmp_path / "out"), *args)
    assert code == 2
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_evaluate_lareqa_subset_end_to_end(capsys, tmp_path, tiny_xlmr_folder):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(capsys, "evaluate", "--dataset", "mlqa-r", "--model", "xlm-roberta-base",
                              "--model-path", str(tiny_xlmr_folder), "--max-question-ids", "8", "--max-length", "128",
                              "--languages", "en", "de", "--trec-runs", "--per-query", "--output", str(out))
    assert code == 0 and "Mean" in stdout
    assert stdout.startswith("mlqa-r, 8 question ids, languages en de · model XLM-R base (")  # what the table is
    run = load_run(out)
    assert set(run.tidy.query_language) == {"en", "de"}
    assert set(run.tidy.setting) == {"mono", "cross", "multi"}
    assert (run.tidy.model == "XLM-R base").all()
    assert list(run.summary.index) == ["en", "de", "Mean"]
    assert run.provenance["config"]["max_question_ids"] == 8
    assert run.provenance["config"]["model_spec"]["max_seq_length"] == 128  # the tiny model's positions: 130
    assert {"versions", "hardware", "date", "data_checksum", "model_fingerprint"} <= set(run.provenance)
    assert run.provenance["data_checksum"].endswith(":8-ids-by-article-seed-0")
    assert "subset of 8 question ids" in provenance_note(run.provenance)
    precision = run.provenance["config"]["model_spec"]["precision"]
    assert precision == resolve_precision("auto")  # the default, resolved for this machine and recorded
    engine = run.provenance["config"]["model_spec"]["engine"]
    assert engine == resolve_model("offline", precision=precision, engine="auto").engine  # auto, resolved too
    assert f", {precision}, {engine}, fingerprint" in provenance_note(run.provenance)
    assert (out / "runs" / "multi-en.trec").is_file() and (out / "runs" / "multi-de.trec").is_file()
    per_query = pd.read_csv(out / "per_query.csv.gz")
    assert set(per_query.setting) == {"mono", "cross", "multi"} and set(per_query.query_language) == {"en", "de"}


def test_max_length_sets_the_evaluated_models_length(tiny_xlmr_folder):
    from hybridir.evaluation.run import EvaluationConfig, evaluated_model

    config = EvaluationConfig(model="xlm-roberta-base", model_path=str(tiny_xlmr_folder), max_length=64)
    assert evaluated_model(config).max_seq_length == 64
    assert evaluated_model(EvaluationConfig(model="xlm-roberta-base", model_path=str(tiny_xlmr_folder))).max_seq_length == 256


def write_beir(root, docs: dict[str, str], queries: dict[str, str], qrels: list[tuple[str, str, int]]):
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n"
                                               for i, t in docs.items()))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries.items()))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                             + "".join(f"{q}\t{d}\t{r}\n" for q, d, r in qrels))
    return root


DOCS = {f"d{i}": f"Document number {i} about topic {i % 3}." for i in range(12)}
QRELS = [("q0", "d0", 1), ("q1", "d4", 2), ("q2", "d5", 1)]


def test_evaluate_beir_directory(capsys, tmp_path, tiny_xlmr_folder):
    root = write_beir(tmp_path / "tiny-beir", DOCS, {f"q{i}": f"topic {i}" for i in range(3)}, QRELS)
    code, stdout, _ = run_cli(capsys, "evaluate", "--dataset", str(root), "--model", "xlm-roberta-base",
                              "--model-path", str(tiny_xlmr_folder), "--output", str(tmp_path / "out"))
    assert code == 0
    tidy = pd.read_csv(tmp_path / "out" / "tidy.csv", keep_default_na=False)
    assert set(tidy.metric) == {"ndcg@10", "recall@100", "map"}
    assert (tidy.n_queries == 3).all() and (tidy.setting == "mono").all()
    recall = tidy.loc[tidy.metric == "recall@100", "value"].item()
    assert recall == 1.0  # 12 documents: every relevant one is within the top 100


def test_evaluate_beir_cross_lingual_variant(capsys, tmp_path, tiny_xlmr_folder):
    english = write_beir(tmp_path / "en", DOCS, {f"q{i}": f"topic {i}" for i in range(3)}, QRELS)
    dutch_docs = {i: t.replace("Document number", "Document nummer") for i, t in DOCS.items()}
    dutch = write_beir(tmp_path / "nl", dutch_docs, {f"q{i}": f"onderwerp {i}" for i in range(3)}, QRELS)
    code, _, _ = run_cli(capsys, "evaluate", "--dataset", str(dutch), "--corpus-dataset", str(english),
                         "--query-language", "nl", "--corpus-language", "en", "--model", "xlm-roberta-base",
                         "--model-path", str(tiny_xlmr_folder), "--output", str(tmp_path / "out"))
    assert code == 0
    tidy = pd.read_csv(tmp_path / "out" / "tidy.csv", keep_default_na=False)
    assert set(zip(tidy.setting, tidy.query_language, tidy.candidate_language)) == {("cross", "nl", "en")}
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert "+" in provenance["data_checksum"]  # both copies' checksums


def test_evaluate_miracl_with_a_local_corpus_in_hub_layout(capsys, tmp_path, tiny_xlmr_folder):
    qrels = load_miracl_qrels("yo")
    judged = sorted({doc for docs in qrels.values() for doc in docs})[:40]
    folder = tmp_path / "corpus" / "miracl-corpus-v1.0-yo"
    folder.mkdir(parents=True)
    with gzip.open(folder / "docs-0.jsonl.gz", "wt", encoding="utf-8") as handle:
        for doc in judged:
            handle.write(json.dumps({"docid": doc, "title": "Àkọlé", "text": f"Ọ̀rọ̀ {doc}"}) + "\n")
    code, stdout, _ = run_cli(capsys, "evaluate", "--dataset", "miracl", "--languages", "yo", "--model",
                              "xlm-roberta-base", "--model-path", str(tiny_xlmr_folder), "--miracl-corpus",
                              str(tmp_path / "corpus"), "--trec-runs", "--output", str(tmp_path / "out"))
    assert code == 0 and "Median" in stdout
    assert len((tmp_path / "out" / "runs" / "miracl-yo.trec").read_text().splitlines()) == 119 * 40
    tidy = pd.read_csv(tmp_path / "out" / "tidy.csv")
    assert set(tidy.metric) == {"ndcg@10", "recall@100"}
    assert tidy.n_queries.iloc[0] == 119  # every yo dev topic is judged
    # 40 documents: every one that is judged relevant and present is retrieved within the top 100
    assert 0 < tidy.loc[tidy.metric == "recall@100", "value"].item() <= 1
