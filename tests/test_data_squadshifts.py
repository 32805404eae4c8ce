"""SQuADShifts loader: counts from ../shared/data/README.md and its errors."""

from __future__ import annotations

import json

import pytest

from hybridir import paths
from hybridir.data import load_lareqa, sources
from hybridir.data.squadshifts import SQUADSHIFTS_NAMES, load_squadshifts

COUNTS = {"new_wiki": (1581, 7938), "reddit": (2035, 9803), "amazon_reviews": (2050, 9885)}  # paragraphs, questions


@pytest.mark.parametrize("name", SQUADSHIFTS_NAMES)
def test_counts_and_columns(name):
    frame = load_squadshifts(name)
    assert list(frame.columns) == ["qid", "question", "context", "answer_text", "answer_start", "title"]
    assert len(frame) == COUNTS[name][1] and frame["qid"].is_unique
    raw = json.loads(sources.resolve(f"squadshifts/{name}_v1.0.json").read_text("utf-8"))
    assert sum(len(article["paragraphs"]) for article in raw["data"]) == COUNTS[name][0]
    spans = [c[s:s + len(a)] for c, s, a in zip(frame["context"], frame["answer_start"], frame["answer_text"])]
    assert spans == frame["answer_text"].tolist()


def test_no_overlap_with_xquad_r():
    xquad = load_lareqa("xquad-r", ["en"])
    for name in SQUADSHIFTS_NAMES:
        frame = load_squadshifts(name)
        assert not set(frame["context"]) & set(xquad.candidates["context"])
        assert not set(frame["qid"]) & set(xquad.questions["qid"])


def test_nyt_is_not_available():
    with pytest.raises(ValueError, match="SQuADShifts 'nyt' is not in the pinned data"):
        load_squadshifts("nyt")


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown SQuADShifts set 'wiki'; choose one of: new_wiki, reddit, amazon"):
        load_squadshifts("wiki")


@pytest.mark.parametrize(("text", "message"), [
    ("[", "not valid UTF-8 JSON"),
    ('{"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}', "article 'T': missing key 'context'"),
    (json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [{"id": "q", "answers": []}]}]}]}),
     "question 'q': the answers list is empty"),
])
def test_malformed_file(tmp_path, monkeypatch, text, message):
    path = tmp_path / "squadshifts" / "reddit_v1.0.json"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=message) as info:
        load_squadshifts("reddit")
    assert str(path) in str(info.value)
