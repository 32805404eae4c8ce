"""MIRACL at corpus scale, on a synthetic corpus in the hub's layout with real yo topic and qrels ids planted in it
(a tiny random model: plumbing only): the sharded search equals the in-memory one exactly; a run killed while
encoding resumes at its first missing shard and writes the same run file; two processes give one's results."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hybridir import encoding, paths
from hybridir.data.miracl import load_miracl_qrels, load_miracl_topics
from hybridir.evaluation import corpus_search
from hybridir.evaluation.corpus_search import CHUNK_BATCHES, Shard, search_corpus, shard_path, write_run
from hybridir.evaluation.retrieval import document_texts, evaluate_miracl, search
from hybridir.models.spec import resolve_model

PASSAGES, SHARD, FILES = 3000, 400, 3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every passage judged for a yo dev topic, among fillers, over three files of the hub's layout."""
    judged = sorted({doc for docs in load_miracl_qrels("yo").values() for doc in docs})
    doc_ids = judged + [f"{900000 + i}#0" for i in range(PASSAGES - len(judged))]
    rng = np.random.default_rng(0)
    rng.shuffle(doc_ids)
    words = [f"w{i}" for i in range(3000)]
    root = tmp_path_factory.mktemp("miracl-corpus")
    folder = root / "miracl-corpus-v1.0-yo"
    folder.mkdir()
    for part, ids in enumerate(np.array_split(np.array(doc_ids), FILES)):
        with gzip.open(folder / f"docs-{part}.jsonl.gz", "wt", encoding="utf-8") as handle:
            for doc in ids:
                text = " ".join(rng.choice(words, size=int(rng.integers(4, 24))))
                handle.write(json.dumps({"docid": str(doc), "title": f"Àkọlé {doc}", "text": text}) + "\n")
    return root


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.CACHE_DIR_ENV, str(tmp_path / "cache"))
    encoding._encoder.cache_clear()
    return tmp_path / "cache"


@pytest.fixture()
def tiny(tiny_xlmr_folder):
    return resolve_model("xlm-roberta-base", path=tiny_xlmr_folder)


def _shards(corpus):
    from hybridir.data.miracl import stream_miracl_corpus

    return [Shard(b["docid"], document_texts(b["title"], b["text"])) for b in stream_miracl_corpus("yo", corpus, SHARD)]


def _queries(model):
    topics = load_miracl_topics("yo")
    return encoding.encode(model, topics.text.tolist(), "query", show_progress=False), topics.query_id.tolist()


def test_the_sharded_search_equals_an_exact_search_of_the_whole_corpus_in_memory(corpus, tiny, fresh_cache):
    shards = _shards(corpus)
    assert [len(s.doc_ids) for s in shards] == [SHARD] * 7 + [PASSAGES - 7 * SHARD]
    vectors, query_ids = _queries(tiny)
    run = search_corpus(tiny, vectors, query_ids, shards, depth=100, batch_size=16)
    # The reference: one exact search over every passage's stored vector at once.
    stored = [np.load(shard_path(tiny, shard)) for shard in shards]
    every_id = np.concatenate([s["ids"] for s in stored]).tolist()
    assert every_id == [d for shard in shards for d in shard.doc_ids]  # ids stored beside their rows, in order
    every_vector = np.concatenate([s["vectors"] for s in stored]).astype(np.float32)
    assert run == search(vectors, every_vector, query_ids, every_id, depth=100)
    assert all(len(documents) == 100 for documents in run.values())
    # Each stored row is its passage's embedding (fp16): the rows were put back in corpus order.
    texts = [t for shard in shards for t in shard.texts]
    np.testing.assert_allclose(every_vector, encoding.encode(tiny, texts, "passage", show_progress=False), atol=2e-3)
    # A depth beyond the corpus returns every passage, once.
    small = search_corpus(tiny, vectors[:2], query_ids[:2], shards[:1], depth=SHARD + 50, batch_size=16)
    assert [len(documents) for documents in small.values()] == [SHARD, SHARD]


def test_cached_shards_are_read_not_encoded(corpus, tiny, fresh_cache, monkeypatch):
    vectors, query_ids = _queries(tiny)
    first = search_corpus(tiny, vectors, query_ids, _shards(corpus), depth=10, batch_size=16)
    monkeypatch.setattr(corpus_search, "encode_in_chunks", lambda *a, **k: pytest.fail("a cached shard re-encoded"))
    assert search_corpus(tiny, vectors, query_ids, _shards(corpus), depth=10, batch_size=16) == first


def test_two_processes_give_the_run_of_one(corpus, tiny, fresh_cache, monkeypatch, tmp_path, capsys):
    vectors, query_ids = _queries(tiny)
    one = search_corpus(tiny, vectors, query_ids, _shards(corpus), depth=100, batch_size=16, passages=PASSAGES)
    monkeypatch.setenv(paths.CACHE_DIR_ENV, str(tmp_path / "second-cache"))
    two = search_corpus(tiny, vectors, query_ids, _shards(corpus), depth=100, batch_size=16, devices=["cpu", "cpu"],
                        passages=PASSAGES)
    assert two == one  # the same chunks in each worker: the same vectors to the last bit
    estimates = [line for line in capsys.readouterr().err.splitlines() if "passages/s on" in line]
    assert [line.split(" on ")[1].split(":")[0] for line in estimates] == ["1 process", "2 processes (cpu, cpu)"]


def _evaluate(corpus, tiny_xlmr_folder, output, cache):
    command = [sys.executable, "-c", "import sys; from hybridir.cli import main; sys.exit(main())",
               "evaluate", "--dataset", "miracl", "--languages", "yo",
               "--model", "xlm-roberta-base", "--model-path", str(tiny_xlmr_folder), "--miracl-corpus", str(corpus),
               "--corpus-shard-size", "250", "--batch-size", "8", "--trec-runs", "--output", str(output)]
    environment = os.environ | {paths.CACHE_DIR_ENV: str(cache)}
    return subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_run_killed_while_encoding_resumes_at_its_first_missing_shard(corpus, tiny_xlmr_folder, tmp_path):
    whole = _evaluate(corpus, tiny_xlmr_folder, tmp_path / "whole", tmp_path / "cache-whole")
    assert whole.wait(timeout=600) == 0, whole.stderr.read()
    cache = tmp_path / "cache-killed"
    killed = _evaluate(corpus, tiny_xlmr_folder, tmp_path / "killed", cache)
    deadline = time.monotonic() + 600
    while len(list(cache.glob("embeddings/*/corpus/*.npz"))) < 3 and killed.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    kept = {p.name: p.stat().st_mtime_ns for p in cache.glob("embeddings/*/corpus/*.npz")}
    assert 3 <= len(kept) < PASSAGES // 250, "the run was not killed while encoding"
    resumed = _evaluate(corpus, tiny_xlmr_folder, tmp_path / "killed", cache)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    after = {p.name: p.stat().st_mtime_ns for p in cache.glob("embeddings/*/corpus/*.npz")}
    assert {name: after[name] for name in kept} == kept  # the finished shards were read, not encoded again
    assert len(list(cache.glob("embeddings/*/corpus/*.npz"))) == PASSAGES // 250
    assert not list(cache.glob("embeddings/*/corpus/*.tmp"))
    run = (tmp_path / "killed" / "runs" / "miracl-yo.trec").read_text()
    assert run == (tmp_path / "whole" / "runs" / "miracl-yo.trec").read_text()
    assert len(run.splitlines()) == 119 * 100
    assert (tmp_path / "killed" / "tidy.csv").read_text() == (tmp_path / "whole" / "tidy.csv").read_text()


def test_evaluate_miracl_scores_every_judged_topic(corpus, tiny, fresh_cache, tmp_path, capsys):
    tidy, per_query = evaluate_miracl(tiny, "yo", corpus, batch_size=16, shard_size=SHARD, run_file=tmp_path / "r")
    assert set(tidy.metric) == {"ndcg@10", "recall@100"} and (tidy.n_queries == 119).all()
    # The cost estimate, once two encoding steps (of 8 batches) have timed the machine: the passages (counted in the
    # local folder) left × the rate of the second.
    estimate = [line for line in capsys.readouterr().err.splitlines() if "passages/s on 1 process" in line]
    assert len(estimate) == 1 and f"at most {PASSAGES - 2 * 16 * CHUNK_BATCHES:,} passages left" in estimate[0]
    assert len(per_query) == 119 and per_query.qid.is_unique
    first = (tmp_path / "r").read_text().splitlines()[0].split()
    assert first[1] == "Q0" and first[3] == "1" and first[5] == "hybridir"


def test_write_run_ranks_by_score(tmp_path):
    path = write_run(tmp_path / "run.trec", {"q": {"a": 0.1, "b": 0.9, "c": 0.5}}, depth=2)
    assert path.read_text() == "q Q0 b 1 0.900000 hybridir\nq Q0 c 2 0.500000 hybridir\n"


def test_encoding_devices_are_checked_against_the_machine():
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks a CPU-only machine's answers")
    assert encoding.encoding_devices(None) == [] and encoding.encoding_devices(["cpu", "cpu"]) == ["cpu", "cpu"]
    with pytest.raises(ValueError, match=r"^--encode-devices: 'cuda:0' is not a device of this machine \(0 GPUs\); "
                                         r"give some of: cpu$"):
        encoding.encoding_devices(["cuda:0"])
