"""Parallel QA training data: LAReQA and SQuADShifts on the real files, JSONL and mMARCO on tmp files, every error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from hybridir import paths
from hybridir.data import parallel, sources
from hybridir.data.lareqa import MLQA_R_LANGUAGES, XQUAD_R_LANGUAGES, load_lareqa
from hybridir.data.parallel import (
    ISO_639_1, ParallelQA, lareqa_parallel, load_mmarco, load_parallel_jsonl, squadshifts_pairs,
)
from hybridir.data.squadshifts import load_squadshifts

MLQA_R_QUESTIONS = {"ar": 517, "de": 512, "en": 1148, "es": 500, "hi": 507, "vi": 511, "zh": 504}
# questions -> pairs, and how many positives hold the whole answer text (measured with sentencex 1.0.32)
SQUADSHIFTS_PAIRS = {"new_wiki": (7938, 5274, 5268), "reddit": (9803, 7229, 7192),
                     "amazon_reviews": (9885, 7876, 7831)}
COLUMNS = ["id", "language", "query", "positive"]


def _one_line_error(info: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message


# --- LAReQA (real files) ----------------------------------------------------------------------------------


def test_xquad_r_gives_every_id_in_all_11_languages():
    data = lareqa_parallel("xquad-r")
    assert list(data.pairs.columns) == COLUMNS and not data.has_negatives
    assert len(data.pairs) == 13_090 and data.pairs["id"].nunique() == 1190
    assert (data.pairs.groupby("id").size() == 11).all()
    assert data.languages == XQUAD_R_LANGUAGES
    assert data.checksum == f"{load_lareqa('xquad-r').checksum}:parallel"
    assert data.pairs.equals(data.pairs.sort_values(["id", "language"], ignore_index=True))


def test_mlqa_r_ids_appear_in_2_to_4_languages_always_with_english():
    data = lareqa_parallel("mlqa-r")
    assert data.pairs["id"].nunique() == 1148 and len(data.pairs) == 4199
    assert data.pairs.groupby("id").size().value_counts().to_dict() == {2: 65, 3: 263, 4: 820}  # README's split
    assert set(data.pairs.loc[data.pairs["language"] == "en", "id"]) == set(data.pairs["id"])
    assert data.pairs.groupby("language").size().to_dict() == MLQA_R_QUESTIONS
    assert data.languages == MLQA_R_LANGUAGES


@pytest.mark.parametrize(("name", "language"), [("xquad-r", "tr"), ("mlqa-r", "de")])
def test_positive_is_the_annotated_sentence_holding_the_answer(name, language):
    """Re-derived from the raw file: the sentence whose break contains the answer start."""
    raw = json.loads(sources.resolve(f"lareqa/{name}/{language}.json").read_text("utf-8"))
    expected = {}
    for article in raw["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                start = qa["answers"][0]["answer_start"]
                i = next(i for i, (s, e) in enumerate(paragraph["sentence_breaks"]) if s <= start < e)
                expected[qa["id"]] = (qa["question"], paragraph["sentences"][i])
    pairs = lareqa_parallel(name, [language]).pairs
    assert dict(zip(pairs["id"], zip(pairs["query"], pairs["positive"]))) == expected


def test_lareqa_language_subset():
    data = lareqa_parallel("mlqa-r", ["en", "de"])
    assert data.languages == ("de", "en") and len(data.pairs) == 1148 + 512
    with pytest.raises(ValueError, match="mlqa-r has no language 'el'"):
        lareqa_parallel("mlqa-r", ["el"])


# --- SQuADShifts (real files) -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SQUADSHIFTS_PAIRS))
def test_squadshifts_pairs_one_question_per_answer_sentence(name):
    questions, kept, holding_answer = SQUADSHIFTS_PAIRS[name]
    data = squadshifts_pairs(name)
    frame = load_squadshifts(name)
    assert len(frame) == questions and len(data.pairs) == kept
    assert data.name == f"squadshifts-{name}" and data.languages == ("en",) and list(data.pairs.columns) == COLUMNS
    assert data.pairs["positive"].is_unique
    source = frame.set_index("qid").loc[data.pairs["id"]]
    assert (source["question"].to_numpy() == data.pairs["query"].to_numpy()).all()
    # the positive is a span of the context that covers the answer start
    for context, start, positive in zip(source["context"], source["answer_start"], data.pairs["positive"]):
        offset = context.find(positive)
        assert positive == positive.strip() and 0 <= offset <= start < offset + len(positive)
    # kept in file order; every dropped question shares its answer sentence with an earlier kept one
    assert (frame["qid"].reset_index().set_index("qid").loc[data.pairs["id"], "index"].diff().dropna() > 0).all()
    assert sum(a in p for a, p in zip(source["answer_text"], data.pairs["positive"])) == holding_answer


def test_squadshifts_subset_is_seeded_and_in_file_order():
    full = squadshifts_pairs("new_wiki")
    first = squadshifts_pairs("new_wiki", max_pairs=100, seed=3)
    assert first.pairs.equals(squadshifts_pairs("new_wiki", max_pairs=100, seed=3).pairs)
    assert len(first.pairs) == 100 and first.checksum == f"{full.checksum}:100-seed-3"
    position = pd.Series(range(len(full.pairs)), index=full.pairs["id"])
    assert position.loc[first.pairs["id"]].is_monotonic_increasing
    assert set(first.pairs["id"]) != set(squadshifts_pairs("new_wiki", max_pairs=100, seed=4).pairs["id"])
    assert squadshifts_pairs("new_wiki", max_pairs=len(full.pairs)).pairs.equals(full.pairs)


@pytest.mark.parametrize(("max_pairs", "message"), [(0, "max_pairs must be at least 1"),
                                                    (5275, "max_pairs=5275 exceeds the 5274 pairs")])
def test_squadshifts_max_pairs_errors(max_pairs, message):
    with pytest.raises(ValueError, match=message):
        squadshifts_pairs("new_wiki", max_pairs=max_pairs)


def test_squadshifts_unknown_name():
    with pytest.raises(ValueError, match="unknown SQuADShifts set 'wiki'"):
        squadshifts_pairs("wiki")


def _squadshifts_file(root: Path, context: str, starts: dict[str, int]) -> None:
    qas = [{"id": qid, "question": f"{qid}?", "answers": [{"text": context[s:s + 4], "answer_start": s}]}
           for qid, s in starts.items()]
    path = root / "squadshifts" / "reddit_v1.0.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}))


def test_squadshifts_drops_gaps_and_repeated_sentences(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
    context = "Alpha is first.  Beta comes second. Gamma is third."
    # a: sentence 1; gap: the double space; b1/b2: sentence 2 twice; c: sentence 3
    _squadshifts_file(tmp_path, context, {"a": 0, "gap": 16, "b1": 17, "b2": 23, "c": 36})
    pairs = squadshifts_pairs("reddit").pairs
    assert pairs.values.tolist() == [["a", "en", "a?", "Alpha is first."], ["b1", "en", "b1?", "Beta comes second."],
                                     ["c", "en", "c?", "Gamma is third."]]


def test_squadshifts_sentence_not_found_in_context_is_left_out(tmp_path, monkeypatch):
    """A splitter that changed a sentence's text: its answers fall in no sentence and are dropped."""
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
    _squadshifts_file(tmp_path, "One here. Two there.", {"one": 0, "two": 10})
    monkeypatch.setattr(parallel.sentencex, "segment", lambda language, text: iter(["One  here. ", "Two there."]))
    assert squadshifts_pairs("reddit").pairs["id"].tolist() == ["two"]


# --- JSONL ------------------------------------------------------------------------------------------------


def _jsonl(tmp_path: Path, *records, name: str = "mine.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records),
                    encoding="utf-8")
    return path


def _record(item_id="q1", language="de", **extra):
    return {"id": item_id, "language": language, "query": f"Frage {item_id}?", "positive": f"Antwort {item_id}.",
            **extra}


def test_jsonl_round_trip_with_integer_ids(tmp_path):
    path = _jsonl(tmp_path, _record(7, "de"), _record(7, "en"), _record("x", "sw"))
    data = load_parallel_jsonl(path)
    assert data.name == "mine" and data.languages == ("de", "en", "sw") and not data.has_negatives
    assert data.pairs.values.tolist() == [["7", "de", "Frage 7?", "Antwort 7."], ["7", "en", "Frage 7?", "Antwort 7."],
                                          ["x", "sw", "Frage x?", "Antwort x."]]
    assert data.checksum == sources.checksum([path])


def test_jsonl_with_negatives_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "neg.jsonl"
    lines = [json.dumps(_record("a", "en", negative="Nein.")), json.dumps(_record("a", "fr", negative="Non."))]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    data = load_parallel_jsonl(path)
    assert data.has_negatives and list(data.pairs.columns) == [*COLUMNS, "negative"]
    assert data.pairs["negative"].tolist() == ["Nein.", "Non."]


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
    ("   ", "blank line; remove it"),
    ('["q1", "de"]', "expected a JSON object with fields id, language, query, positive"),
    (_record(extra_field=1), "unknown field(s) 'extra_field'; allowed: id, language, query, positive, negative"),
    ({"id": "q1", "language": "de", "query": "q?"}, "missing field(s) 'positive'"),
    (_record(item_id=""), "'id' must be a non-empty string or an integer, got ''"),
    (_record(item_id=1.5), "'id' must be a non-empty string or an integer, got 1.5"),
    (_record(item_id=True), "'id' must be a non-empty string or an integer, got True"),
    (_record(language="EN"), "unknown language code 'EN'; use a lowercase ISO 639-1 two-letter code"),
    (_record(language="deu"), "unknown language code 'deu'"),
    (_record(language=None), "unknown language code None"),
    (_record(language=["de"]), "unknown language code ['de']"),
    ({**_record(), "query": " "}, "'query' must be a non-empty string, got ' '"),
    ({**_record(), "positive": ["a"]}, "'positive' must be a non-empty string, got ['a']"),
    (_record(negative=""), "'negative' must be a non-empty string, got ''"),
])
def test_jsonl_malformed_line_names_file_line_and_fix(tmp_path, line, message):
    path = _jsonl(tmp_path, _record("ok"), line)
    with pytest.raises(ValueError) as info:
        load_parallel_jsonl(path)
    _one_line_error(info, f"{path}: line 2: ", message)


def test_jsonl_invalid_utf8(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(_record()).encode() + b"\n" + '{"id": "é"}'.encode("latin-1") + b"\n")
    with pytest.raises(ValueError) as info:
        load_parallel_jsonl(path)
    _one_line_error(info, f"{path}: line 2: not valid UTF-8", "save the file as UTF-8")


@pytest.mark.parametrize(("records", "message"), [
    ((_record("a", negative="n"), _record("b", negative="n"), _record("c")),
     "line 3: has no 'negative' but line 1 does; give a negative on every line or on none"),
    ((_record("a"), _record("b", negative="n")), "line 2: has 'negative' but line 1 does not"),
    ((_record(1, "de"), _record("2"), _record("1", "de")),
     "line 3: (id, language) = ('1', 'de') already on line 1; keep one line per id and language"),
])
def test_jsonl_inconsistent_lines(tmp_path, records, message):
    path = _jsonl(tmp_path, *records)
    with pytest.raises(ValueError) as info:
        load_parallel_jsonl(path)
    _one_line_error(info, str(path), message)


def test_jsonl_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(ValueError) as info:
        load_parallel_jsonl(path)
    _one_line_error(info, f"{path}: the file is empty; write one JSON object per line")


def test_iso_639_1_codes():
    assert len(ISO_639_1) == 184 and all(len(c) == 2 and c.isascii() and c.islower() for c in ISO_639_1)
    assert {"en", "de", "zh", "sw", "yo", "he", "sh"} <= ISO_639_1 and not {"iw", "eng", "zz"} & ISO_639_1


# --- the dataclass's own checks ---------------------------------------------------------------------------


def _frame(**columns) -> pd.DataFrame:
    return pd.DataFrame({"id": ["1", "1"], "language": ["de", "en"], "query": ["q", "q"], "positive": ["p", "p"],
                         **columns})


@pytest.mark.parametrize(("pairs", "message"), [
    (_frame().drop(columns="positive"), "pairs columns must be ['id', 'language', 'query', 'positive']"),
    (_frame()[["language", "id", "query", "positive"]], "in that order"),
    (_frame(hard=["n", "n"]), "optionally 'negative'"),
    (_frame(query=["q", ""]), "query of row 1 is ''; every value must be a non-empty string"),
    (_frame(id=[1, 2]), "id of row 0 is 1; every value must be a non-empty string"),
    (_frame(positive=["p", None]), "positive of row 1 is nan"),
    (_frame(language=["de", "xx"]), "unknown language code(s) 'xx'"),
    (_frame(language=["de", "de"]), "(id, language) = ('1', 'de') occurs twice"),
])
def test_parallel_qa_rejects_broken_pairs(pairs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ParallelQA(name="x", pairs=pairs, checksum="c")


def test_parallel_qa_properties():
    data = ParallelQA(name="x", pairs=_frame(language=["en", "de"], negative=["n", "m"]), checksum="c")
    assert data.languages == ("de", "en") and data.has_negatives


# --- mMARCO (a tiny local copy in the hub's layout) -------------------------------------------------------

TRIPLES = [("10", "100", "101"), ("20", "200", "201"), ("30", "300", "301")]


def _mmarco(root: Path, triples=TRIPLES, languages=("german", "english")) -> Path:
    data = root / "data"
    (data / "google" / "queries" / "train").mkdir(parents=True)
    (data / "google" / "collections").mkdir(parents=True)
    (data / "triples.train.ids.small.tsv").write_text("".join("\t".join(t) + "\n" for t in triples))
    for name in languages:
        tag = name[:2]
        # other ids around the needed ones, in a different order from the triples
        queries = [("5", f"{tag} other"), *((q, f"{tag} query {q}") for q, _, _ in reversed(TRIPLES))]
        passages = [("7", f"{tag} other"), *((pid, f"{tag} passage {pid}") for t in TRIPLES for pid in t[1:])]
        (data / "google" / "queries" / "train" / f"{name}_queries.train.tsv").write_text(
            "".join(f"{i}\t{text}\n" for i, text in queries))
        (data / "google" / "collections" / f"{name}_collection.tsv").write_text(
            "".join(f"{i}\t{text}\n" for i, text in passages))
    return root


def test_mmarco_from_a_local_copy(tmp_path):
    data = load_mmarco(["de", "en"], max_queries=10, source=str(_mmarco(tmp_path)))
    assert data.name == "mmarco" and data.has_negatives and data.languages == ("de", "en")
    tag = {"de": "ge", "en": "en"}  # the files' texts start with the first letters of the language name
    assert data.pairs.values.tolist() == [
        [str(line), lang, f"{tag[lang]} query {q}", f"{tag[lang]} passage {p}", f"{tag[lang]} passage {n}"]
        for line, (q, p, n) in enumerate(TRIPLES, start=1) for lang in ("de", "en")]
    assert data.checksum.startswith("sha256-content:")
    assert load_mmarco(["en", "de"], max_queries=10, source=str(tmp_path)).checksum == data.checksum
    small = load_mmarco(["en"], max_queries=2, source=str(tmp_path))
    assert small.pairs["id"].tolist() == ["1", "2"] and small.checksum != data.checksum


def test_mmarco_keeps_one_triple_per_query(tmp_path):
    _mmarco(tmp_path, triples=[TRIPLES[0], ("10", "200", "201"), TRIPLES[2]])
    pairs = load_mmarco(["en"], max_queries=2, source=str(tmp_path)).pairs
    assert pairs[["id", "positive"]].values.tolist() == [["1", "en passage 100"], ["3", "en passage 300"]]


@pytest.mark.parametrize(("languages", "max_queries", "message"), [
    ("en", 1, "languages must be a sequence of codes"),
    (["en", "sw"], 1, "mMARCO has no language 'sw'; choose from: ar, de, en"),
    ([], 1, "languages must be non-empty"),
    (["en", "en"], 1, "without repeats"),
    (["en"], 0, "max_queries must be at least 1"),
])
def test_mmarco_argument_errors(tmp_path, languages, max_queries, message):
    with pytest.raises(ValueError, match=message):
        load_mmarco(languages, max_queries, source=str(tmp_path))


def test_mmarco_local_copy_missing_a_file(tmp_path):
    _mmarco(tmp_path, languages=("english",))
    with pytest.raises(FileNotFoundError) as info:
        load_mmarco(["en", "de"], 1, source=str(tmp_path))
    _one_line_error(info, "data/google/queries/train/german_queries.train.tsv is missing",
                    "a local mMARCO copy needs the hub's layout")


def test_mmarco_source_neither_folder_nor_hub_id(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mmarco(["en"], 1, source=str(tmp_path / "absent"))
    _one_line_error(info, f"source={str(tmp_path / 'absent')!r} is neither a local folder nor a hub dataset id")


def test_mmarco_hub_unreachable_says_how_to_use_a_local_copy(monkeypatch):
    import datasets
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as without network, in CI too
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConnectionError) as info:
        load_mmarco(["en"], 1, source="unicamp-dl/mmarco")
    _one_line_error(info, "cannot read mMARCO from the Hugging Face hub, source='unicamp-dl/mmarco'",
                    "run `hf download unicamp-dl/mmarco data/triples.train.ids.small.tsv "
                    "data/google/queries/train/english_queries.train.tsv", "pass source='DIR'")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: (d / "triples.train.ids.small.tsv").write_text("10\t100\n"),
     "triples.train.ids.small.tsv: line 1 has 2 tab-separated fields, expected 3"),
    (lambda d: (d / "triples.train.ids.small.tsv").write_text(""), "triples.train.ids.small.tsv holds no triples"),
    (lambda d: (d / "google" / "collections" / "english_collection.tsv").write_text("100\tp\n101\tn\n"),
     "english_collection.tsv: 4 needed id(s) are missing, e.g. 200; is the file complete?"),
    (lambda d: (d / "google" / "collections" / "english_collection.tsv").write_text("100\t \n"),
     "english_collection.tsv: line 1: id 100 has an empty text"),
    (lambda d: (d / "google" / "queries" / "train" / "english_queries.train.tsv").write_text("10 query\n"),
     "english_queries.train.tsv: line 1 has no tab; expected id<TAB>text"),
])
def test_mmarco_malformed_files(tmp_path, edit, message):
    edit(_mmarco(tmp_path, languages=("english",)) / "data")
    with pytest.raises(ValueError) as info:
        load_mmarco(["en"], 10, source=str(tmp_path))
    _one_line_error(info, message)
