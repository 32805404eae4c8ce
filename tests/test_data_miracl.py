"""MIRACL: dev topics and qrels against ../shared/data/README.md; the corpus on a tiny copy of the hub layout."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import datasets
import huggingface_hub.constants
import pytest

from hybridir import paths
from hybridir.data.miracl import (
    MIRACL_LANGUAGES, count_miracl_passages, load_miracl_qrels, load_miracl_topics, miracl_corpus_files,
    stream_miracl_corpus,
)

DEV_TOPICS = {"ar": 2896, "bn": 411, "de": 305, "en": 799, "es": 648, "fa": 632, "fi": 1271, "fr": 343, "hi": 350,
              "id": 960, "ja": 860, "ko": 213, "ru": 1252, "sw": 482, "te": 828, "th": 733, "yo": 119, "zh": 393}


def test_languages():
    assert MIRACL_LANGUAGES == tuple(sorted(DEV_TOPICS))


@pytest.mark.parametrize("lang", sorted(DEV_TOPICS))
def test_topics_and_qrels(lang):
    topics = load_miracl_topics(lang)
    assert list(topics.columns) == ["query_id", "text"] and len(topics) == DEV_TOPICS[lang]
    assert topics["query_id"].is_unique and topics["text"].str.strip().ne("").all()
    qrels = load_miracl_qrels(lang)
    assert set(qrels) == set(topics["query_id"])  # every dev topic is judged
    assert {rel for docs in qrels.values() for rel in docs.values()} == {0, 1}
    assert all(re.fullmatch(r"\d+#\d+", doc) for docs in qrels.values() for doc in docs)


def test_unknown_language():
    for load in (load_miracl_topics, load_miracl_qrels, miracl_corpus_files, count_miracl_passages):
        with pytest.raises(ValueError, match="MIRACL has no dev language 'xx'; choose from: ar, bn, de"):
            load("xx")


@pytest.mark.parametrize(("kind", "line", "message"), [
    ("topics", "12 no tab here", r"topics.miracl-v1.0-sw-dev.tsv:2: expected 'qid<TAB>query'"),
    ("topics", "0\tagain", r":2: query id '0' occurs twice"),
    ("qrels", "0 Q0 123#4", r"qrels.miracl-v1.0-sw-dev.tsv:2: expected 'qid Q0 docid relevance'"),
    ("qrels", "0 Q0 1#0 1", r":2: query '0' judges document '1#0' twice"),
])
def test_bad_lines(tmp_path, monkeypatch, kind, line, message):
    path = tmp_path / "miracl" / kind / f"{kind}.miracl-v1.0-sw-dev.tsv"
    path.parent.mkdir(parents=True)
    first = "0\tquery" if kind == "topics" else "0 Q0 1#0 1"
    path.write_text(f"{first}\n{line}\n", encoding="utf-8")
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=message):
        (load_miracl_topics if kind == "topics" else load_miracl_qrels)("sw")


# --- corpus -----------------------------------------------------------------------------------------------


def _shard(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


@pytest.fixture
def corpus_dir(tmp_path):
    """Two shards in the hub's layout, plus a field the loader must drop."""
    root = tmp_path / "miracl-corpus"
    _shard(root / "miracl-corpus-v1.0-sw" / "docs-0.jsonl.gz",
           [{"docid": "1#0", "title": "Kenya", "text": "Kenya ni nchi.", "extra": 1},
            {"docid": "1#1", "title": "Kenya", "text": "Mji mkuu ni Nairobi.", "extra": 2}])
    _shard(root / "miracl-corpus-v1.0-sw" / "docs-1.jsonl.gz",
           [{"docid": "7#0", "title": "Tanzania", "text": "Tanzania ni nchi.", "extra": 3}])
    return root


def _read(lang, source, batch_size=2):
    return list(stream_miracl_corpus(lang, source, batch_size))


def test_local_corpus_streams_in_batches_in_file_order(corpus_dir):
    folder = corpus_dir / "miracl-corpus-v1.0-sw"
    _shard(folder / "docs-10.jsonl.gz", [{"docid": "9#0", "title": "Uganda", "text": "Uganda ni nchi.", "extra": 4}])
    _shard(folder / "docs-2.jsonl.gz", [{"docid": "5#0", "title": "Rwanda", "text": "Rwanda ni nchi.", "extra": 5}])
    batches = _read("sw", corpus_dir)
    assert [len(b["docid"]) for b in batches] == [2, 2, 1]
    assert all(list(b) == ["docid", "title", "text"] for b in batches)  # the extra field is dropped
    # Files sorted as text (docs-10 before docs-2), as datasets sorts the hub's: a local copy and the hub cut the
    # same shards.
    assert [d for b in batches for d in b["docid"]] == ["1#0", "1#1", "7#0", "9#0", "5#0"]
    assert batches[1]["text"] == ["Tanzania ni nchi.", "Uganda ni nchi."]
    assert _read("sw", str(corpus_dir), batch_size=16)[0]["docid"] == ["1#0", "1#1", "7#0", "9#0", "5#0"]
    assert [Path(f).name for f in miracl_corpus_files("sw", corpus_dir)] == [
        "docs-0.jsonl.gz", "docs-1.jsonl.gz", "docs-10.jsonl.gz", "docs-2.jsonl.gz"]


def test_passages_are_counted_in_a_local_folder_and_published_for_the_hub(corpus_dir):
    assert count_miracl_passages("sw", corpus_dir) == 3
    assert count_miracl_passages("fr") == 14_636_953  # the paper's Table 11, read nowhere
    assert count_miracl_passages("yo") is None and count_miracl_passages("sw", "someone/mirror") is None


def test_local_corpus_without_the_language(corpus_dir):
    with pytest.raises(FileNotFoundError, match=r"no miracl-corpus-v1.0-yo/docs-\*.jsonl.gz under .*miracl-corpus"):
        _read("yo", corpus_dir)


def test_local_corpus_missing_a_field(tmp_path):
    _shard(tmp_path / "miracl-corpus-v1.0-yo" / "docs-0.jsonl.gz", [{"docid": "1#0", "text": "no title"}])
    with pytest.raises(ValueError, match=r"the yo corpus from .* lacks the fields \['title'\]"):
        _read("yo", tmp_path)


def test_a_passage_without_text_is_refused_naming_it(tmp_path):
    _shard(tmp_path / "miracl-corpus-v1.0-yo" / "docs-0.jsonl.gz",
           [{"docid": "1#0", "title": "t", "text": "x"}, {"docid": "1#1", "title": "t", "text": None}])
    with pytest.raises(ValueError, match=r"has a passage \('1#1'\) without a text; each JSON line needs"):
        _read("yo", tmp_path)


def test_a_damaged_local_file_fails_in_one_line_naming_the_files(tmp_path):
    path = tmp_path / "miracl-corpus-v1.0-yo" / "docs-0.jsonl.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(b'{"docid": "1#0", "title": "t", "text": "x"}\n') + b"not gzip")
    with pytest.raises(ValueError, match=r"^could not read the yo corpus under .*; check its "
                                         r"miracl-corpus-v1.0-yo/docs-\*.jsonl.gz files") as info:
        _read("yo", tmp_path)
    assert "\n" not in str(info.value)


def test_hub_corpus_streams_the_hub_layout(monkeypatch):
    calls = []

    def fake_load_dataset(builder, **kwargs):
        calls.append((builder, kwargs["data_files"], kwargs["streaming"]))
        return datasets.Dataset.from_dict({"docid": ["1#0"], "title": ["t"], "text": ["x"]}).to_iterable_dataset()

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert _read("sw", "miracl/miracl-corpus") == [{"docid": ["1#0"], "title": ["t"], "text": ["x"]}]
    assert calls == [("json", ["hf://datasets/miracl/miracl-corpus/miracl-corpus-v1.0-sw/docs-*.jsonl.gz"], True)]


def test_hub_corpus_offline(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConnectionError, match=r"^could not load hf://datasets/miracl/miracl-corpus/"
                                              r"miracl-corpus-v1.0-sw/.*; pass a local corpus directory") as info:
        _read("sw", "miracl/miracl-corpus")
    assert "\n" not in str(info.value)
    assert "with --miracl-corpus DIR (source= in Python)" in str(info.value)  # the CLI's name comes first


def test_source_that_is_neither_a_directory_nor_a_hub_id(tmp_path):
    with pytest.raises(FileNotFoundError, match="is neither a directory nor a hub dataset id"):
        _read("sw", tmp_path / "nowhere")
