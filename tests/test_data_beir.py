"""BEIR loader: SciFact counts from ../shared/data/README.md, then malformed copies in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hybridir import paths
from hybridir.data import load_beir, sources


def test_scifact_test_split():
    data = load_beir("scifact")
    assert len(data.corpus) == 5183 and data.corpus["doc_id"].is_unique
    assert list(data.corpus.columns) == ["doc_id", "title", "text"]
    assert list(data.queries.columns) == ["query_id", "text"]
    assert len(data.queries) == 300 and set(data.queries["query_id"]) == set(data.qrels)
    assert sum(len(docs) for docs in data.qrels.values()) == 339
    assert set(d for docs in data.qrels.values() for d in docs) <= set(data.corpus["doc_id"])
    # The README's "7,998,337 characters" is the length of corpus.jsonl read as text (as BEIR's file);
    # the text fields alone hold 7,261,818 and the titles 504,427.
    assert len((sources.resolve_beir("scifact") / "corpus.jsonl").read_text("utf-8")) == 7_998_337
    assert data.corpus["text"].str.len().sum() == 7_261_818 and data.corpus["title"].str.len().sum() == 504_427


def test_scifact_train_split_and_all_queries():
    data = load_beir("scifact", split="train")
    assert len(data.queries) == 809 and sum(len(docs) for docs in data.qrels.values()) == 919
    assert len(load_beir("scifact").queries) + len(data.queries) == 1109


def test_path_and_name_give_the_same_data():
    by_path = load_beir(paths.data_dir() / "beir" / "scifact")
    by_name = load_beir("scifact")
    assert by_path.checksum == by_name.checksum and len(by_path.checksum) == 64
    assert by_path.qrels == by_name.qrels


@pytest.fixture
def copy(tmp_path) -> Path:
    """A writable copy of SciFact (test split only)."""
    source, root = sources.resolve_beir("scifact"), tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        shutil.copy(source / name, root / name)
    return root


def test_a_directory_is_loaded_as_is(copy):
    assert len(load_beir(copy).queries) == 300
    assert len(load_beir(str(copy)).queries) == 300


def _replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text("utf-8").splitlines(keepends=True)
    lines[number - 1] = text + "\n"
    path.write_text("".join(lines), encoding="utf-8")


@pytest.mark.parametrize(("file", "line", "text", "message"), [
    ("corpus.jsonl", 2, '{"_id": "x", "text": ', r"corpus.jsonl:2: not valid JSON"),
    ("corpus.jsonl", 3, '{"title": "no id", "text": "t"}', r"corpus.jsonl:3: a BEIR record needs an '_id'"),
    ("corpus.jsonl", 4, '["_id", "text"]', r"corpus.jsonl:4: a BEIR record needs"),
    ("queries.jsonl", 5, '{"_id": "0", "text": "dup"}', r"queries.jsonl:5: id '0' occurs twice"),
    ("qrels/test.tsv", 1, "query-id corpus-id score", r"test.tsv:1: expected the header"),
    ("qrels/test.tsv", 3, "1\t31715818", r"test.tsv:3: expected 'query-id<TAB>corpus-id<TAB>integer score'"),
    ("qrels/test.tsv", 4, "3\t14717500\thigh", r"test.tsv:4: expected"),
    ("qrels/test.tsv", 3, "1\t31715818\t1", r"test.tsv:3: query '1' judges document '31715818' twice"),
    ("qrels/test.tsv", 5, "no-such-query\t31715818\t1", r"test.tsv: 1 judged query ids are not in queries.jsonl"),
])
def test_bad_lines_name_file_and_line(copy, file, line, text, message):
    _replace_line(copy / file, line, text)
    with pytest.raises(ValueError, match=message) as info:
        load_beir(copy)
    assert str(copy) in str(info.value) and "\n" not in str(info.value)


def test_unknown_split(copy):
    with pytest.raises(ValueError, match=r"unknown split 'dev' for .*tiny; available: test"):
        load_beir(copy, split="dev")
    shutil.rmtree(copy / "qrels")
    with pytest.raises(ValueError, match=r"available: none \(no qrels/\*.tsv\)"):
        load_beir(copy)


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl"])
def test_missing_file(copy, missing):
    (copy / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"{missing} is missing; a BEIR directory holds"):
        load_beir(copy)


def test_not_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory; pass a BEIR dataset directory or one of: scifact"):
        load_beir(tmp_path / "nfcorpus")
    with pytest.raises(FileNotFoundError, match="nfcorpus is not a directory"):
        load_beir("nfcorpus")
