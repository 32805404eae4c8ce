"""LAReQA loader: the counts of ../shared/data/README.md on the real files, then the error paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybridir import paths
from hybridir.data import lareqa, sources
from hybridir.data.lareqa import (MLQA_R_LANGUAGES, XQUAD_R_LANGUAGES, load_lareqa, question_clusters,
                                  subset_lareqa)

XQUAD_R_CANDIDATES = {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244, "ru": 1219,
                      "th": 852, "tr": 1167, "vi": 1209, "zh": 1196}
MLQA_R_QUESTIONS = {"ar": 517, "de": 512, "en": 1148, "es": 500, "hi": 507, "vi": 511, "zh": 504}
MLQA_R_CANDIDATES = {"ar": 2545, "de": 2362, "en": 6264, "es": 1787, "hi": 2426, "vi": 2828, "zh": 2322}


# --- real files -------------------------------------------------------------------------------------------


def test_frames_have_the_documented_columns(xquad):
    assert list(xquad.questions.columns) == ["language", "qid", "text"]
    assert list(xquad.candidates.columns) == ["language", "uid", "article", "paragraph", "sentence_index", "sentence",
                                             "context"]
    assert list(xquad.relevance.columns) == ["qid", "candidate"]
    assert list(xquad.skipped.columns) == ["language", "qid", "reason"]
    for frame in (xquad.questions, xquad.candidates, xquad.relevance):
        assert isinstance(frame.index, pd.RangeIndex)
    assert xquad.languages == XQUAD_R_LANGUAGES
    assert list(xquad.questions["language"].unique()) == list(XQUAD_R_LANGUAGES)  # languages in the order given


def test_xquad_r_has_1190_questions_per_language_with_one_id_set(xquad):
    assert xquad.questions.groupby("language").size().to_dict() == dict.fromkeys(XQUAD_R_LANGUAGES, 1190)
    id_sets = xquad.questions.groupby("language")["qid"].apply(frozenset)
    assert id_sets.nunique() == 1 and len(id_sets.iloc[0]) == 1190


@pytest.mark.parametrize(("name", "expected", "pool"), [("xquad-r", XQUAD_R_CANDIDATES, 13_014),
                                                        ("mlqa-r", MLQA_R_CANDIDATES, 20_534)])
def test_candidates_per_language_and_pool(name, expected, pool):
    data = load_lareqa(name)
    assert data.candidates.groupby("language").size().to_dict() == expected
    assert len(data.candidates) == pool
    assert data.candidates["uid"].is_unique


def test_mlqa_r_questions_and_id_spread(mlqa):
    assert mlqa.questions.groupby("language").size().to_dict() == MLQA_R_QUESTIONS
    languages_per_id = mlqa.questions.groupby("qid")["language"].agg(frozenset)
    assert len(languages_per_id) == 1148
    assert all("en" in langs for langs in languages_per_id)
    assert languages_per_id.map(len).value_counts().to_dict() == {2: 65, 3: 263, 4: 820}


def test_no_question_is_skipped_on_the_real_files(xquad, mlqa):
    assert xquad.skipped.empty and mlqa.skipped.empty


def test_xquad_r_qid_has_one_relevant_candidate_per_language(xquad):
    languages = xquad.relevance.merge(xquad.candidates[["language"]], left_on="candidate", right_index=True)
    per_qid = languages.groupby("qid")["language"].agg(list)
    assert len(per_qid) == 1190
    assert all(sorted(langs) == sorted(XQUAD_R_LANGUAGES) for langs in per_qid)
    matrix = xquad.relevance_matrix()
    assert matrix.shape == (13_090, 13_014) and matrix.dtype == bool
    assert (np.asarray(matrix.sum(axis=1)).ravel() == 11).all()


def test_mlqa_r_relevant_candidates_are_the_languages_of_the_qid(mlqa):
    relevant = mlqa.relevance.merge(mlqa.candidates[["language"]], left_on="candidate", right_index=True)
    relevant_languages = relevant.groupby("qid")["language"].agg(lambda s: sorted(s))
    question_languages = mlqa.questions.groupby("qid")["language"].agg(lambda s: sorted(s))
    assert relevant_languages.to_dict() == question_languages.to_dict()
    per_question = np.asarray(mlqa.relevance_matrix().sum(axis=1)).ravel()
    assert (per_question == mlqa.questions["qid"].map(question_languages.map(len))).all()


def test_uids_follow_the_lareqa_scheme(xquad):
    c = xquad.candidates
    assert (c["uid"] == c["language"] + "_" + c["paragraph"].astype(str) + "_" + c["sentence_index"].astype(str)).all()
    assert c.groupby("language")["paragraph"].min().eq(1).all()  # paragraphs count from 1, as in XTREME
    assert c["sentence_index"].min() == 0


def test_duplicate_sentences_stay_separate_candidates(xquad):
    repeats = xquad.candidates.duplicated(["language", "sentence"], keep=False)
    assert repeats.sum() > 0  # e.g. "[citation needed]"-style fragments recur
    assert xquad.candidates.loc[repeats, "uid"].is_unique


def test_candidate_text_is_the_annotated_sentence_even_where_the_span_is_shifted(xquad):
    """Only tr_49_2 is not a substring of its context: the context holds a mis-decoded character."""
    c = xquad.candidates
    outside = c.loc[[s not in ctx for s, ctx in zip(c["sentence"], c["context"])], "uid"].tolist()
    assert outside == ["tr_49_2"]
    assert c.set_index("uid").loc["tr_49_3", "sentence"].startswith("İki turistik")


def test_the_two_sets_share_no_question_sentence_or_article(xquad, mlqa):
    assert not set(xquad.questions["qid"]) & set(mlqa.questions["qid"])
    english = [set(d.candidates.loc[d.candidates["language"] == "en", "sentence"]) for d in (xquad, mlqa)]
    assert not english[0] & english[1]
    titles = [{a["title"] for a in json.loads(sources.resolve(f"lareqa/{n}/en.json").read_text("utf-8"))["data"]}
              for n in ("xquad-r", "mlqa-r")]
    assert not titles[0] & titles[1]


def test_language_subset_keeps_order_and_restricts_relevance():
    data = load_lareqa("xquad-r", ["en", "de"])
    assert data.languages == ("en", "de")
    assert list(data.questions["language"].unique()) == ["en", "de"]
    assert len(data.candidates) == 1180 + 1276
    assert (data.relevance.groupby("qid").size() == 2).all()
    assert data.checksum != load_lareqa("xquad-r").checksum


def test_relevance_matrix_slices(xquad):
    q = np.flatnonzero(xquad.questions["language"] == "en")
    c = np.flatnonzero(xquad.candidates["language"] == "de")
    block = xquad.relevance_matrix(q, c)
    assert block.shape == (1190, 1276)
    assert (np.asarray(block.sum(axis=1)).ravel() == 1).all()  # monolingual/cross-lingual: one answer
    # Independently from the relevance table: (question position, candidate position) pairs.
    expected = (xquad.questions.iloc[q][["qid"]].reset_index(drop=True).reset_index(names="i")
                .merge(xquad.relevance, on="qid")
                .merge(pd.DataFrame({"candidate": c, "j": np.arange(len(c))}), on="candidate"))
    assert sorted(zip(*block.nonzero())) == sorted(zip(expected["i"], expected["j"]))
    assert xquad.relevance_matrix(np.array([], dtype=int)).shape == (0, 13_014)


@pytest.mark.parametrize("rows", [np.array([0.5]), np.array([[0]]), np.array([13_090]), np.array([-1])])
def test_relevance_matrix_rejects_bad_rows(xquad, rows):
    with pytest.raises(ValueError, match="question_rows"):
        xquad.relevance_matrix(rows)


def test_loading_is_cached():
    lareqa._load.cache_clear()
    first = [load_lareqa(name) for name in ("xquad-r", "mlqa-r")]
    assert all(load_lareqa(name) is data for name, data in zip(("xquad-r", "mlqa-r"), first))


def test_checksum_covers_the_source_files(mlqa):
    files = [sources.resolve(f"lareqa/mlqa-r/{lang}.json") for lang in MLQA_R_LANGUAGES]
    assert mlqa.checksum == sources.checksum(files)


# --- argument errors --------------------------------------------------------------------------------------


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown LAReQA dataset 'xquad'; choose one of: xquad-r, mlqa-r"):
        load_lareqa("xquad")


@pytest.mark.parametrize(("name", "languages"), [("mlqa-r", ["el"]), ("xquad-r", ["en", "fr"])])
def test_unknown_language(name, languages):
    with pytest.raises(ValueError, match=f"{name} has no language .*; choose from: ar, de"):
        load_lareqa(name, languages)


@pytest.mark.parametrize("languages", ["en", [], ["en", "en"]])
def test_malformed_language_lists(languages):
    with pytest.raises(ValueError, match="languages"):
        load_lareqa("xquad-r", languages)


# --- malformed files, via a data dir in tmp_path ----------------------------------------------------------


def _paragraph(qas, context="Alpha one. Beta two. Gamma three.", breaks=((0, 10), (11, 20), (21, 33))):
    return {"context": context, "sentence_breaks": [list(b) for b in breaks],
            "sentences": [context[s:e] for s, e in breaks], "qas": qas}


def _qa(qid, start, question="q?"):
    return {"id": qid, "question": question, "answers": [{"text": "x", "answer_start": start}]}


def _write(root: Path, name: str, lang: str, paragraphs) -> Path:
    path = root / "lareqa" / name / f"{lang}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = paragraphs if isinstance(paragraphs, str) else json.dumps(
        {"version": "1.1", "data": [{"title": "T", "paragraphs": paragraphs}]})
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
    return tmp_path


def test_synthetic_cross_language_relevance(data_dir):
    _write(data_dir, "mlqa-r", "en", [_paragraph([_qa("a", 12), _qa("b", 25)]), _paragraph([_qa("c", 0)])])
    _write(data_dir, "mlqa-r", "de", [_paragraph([_qa("b", 11)])])
    data = load_lareqa("mlqa-r", ["en", "de"])
    assert data.candidates["uid"].tolist() == ["en_1_0", "en_1_1", "en_1_2", "en_2_0", "en_2_1", "en_2_2",
                                               "de_1_0", "de_1_1", "de_1_2"]
    assert data.relevance.values.tolist() == [["a", 1], ["b", 2], ["c", 3], ["b", 7]]
    assert data.relevance_matrix().toarray().astype(int).tolist() == [
        [0, 1, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 1, 0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0, 0, 1, 0],
    ]


def test_answer_start_outside_every_sentence_is_a_counted_skip(data_dir):
    # 10 is the space between the first two sentences; 40 lies past the context.
    _write(data_dir, "xquad-r", "en", [_paragraph([_qa("in", 3), _qa("gap", 10), _qa("past", 40)])])
    data = load_lareqa("xquad-r", ["en"])
    assert data.questions["qid"].tolist() == ["in"]
    assert data.skipped["qid"].tolist() == ["gap", "past"]
    assert data.skipped["reason"].iloc[0] == "answer start 10 lies in no sentence of paragraph 1"
    assert len(data.candidates) == 3  # skipping a question keeps its paragraph's candidates


def test_sentence_field_wins_over_a_shifted_span(data_dir):
    paragraph = _paragraph([_qa("a", 12)])
    paragraph["sentences"][1] = "Beta 2."
    _write(data_dir, "xquad-r", "en", [paragraph])
    assert load_lareqa("xquad-r", ["en"]).candidates["sentence"].tolist() == ["Alpha one.", "Beta 2.", "Gamma three."]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda p: p.pop("sentence_breaks"), r"paragraph 1: missing key 'sentence_breaks'"),
    (lambda p: p["qas"][0].pop("answers"), r"question 'a': missing key 'answers'"),
    (lambda p: p["qas"][0].update(answers=[]), r"question 'a': the answers list is empty"),
    (lambda p: p["qas"][0]["answers"][0].update(answer_start="12"), "answer_start must be an integer"),
    (lambda p: p["sentences"].pop(), "3 sentence_breaks but 2 sentences"),
    (lambda p: p["sentence_breaks"].reverse(), r"sentence break \[11, 20\] is not an ordered"),
    (lambda p: p["sentence_breaks"][2].__setitem__(1, 99), r"sentence break \[21, 99\]"),
    (lambda p: p["qas"].append(_qa("a", 0)), "question 'a': the question id occurs twice"),
])
def test_malformed_file_names_the_file_and_the_problem(data_dir, mutate, message):
    paragraph = _paragraph([_qa("a", 12)])
    mutate(paragraph)
    path = _write(data_dir, "xquad-r", "en", [paragraph])
    with pytest.raises(ValueError, match=message) as info:
        load_lareqa("xquad-r", ["en"])
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("text", "message"), [("{not json", "not valid UTF-8 JSON"),
                                               ('{"version": "1.1"}', "top level: missing key 'data'")])
def test_invalid_json(data_dir, text, message):
    _write(data_dir, "xquad-r", "en", text)
    with pytest.raises(ValueError, match=message):
        load_lareqa("xquad-r", ["en"])


def test_missing_file_in_the_data_dir(data_dir):
    with pytest.raises(FileNotFoundError, match=f"lareqa/xquad-r/en.json is missing from HYBRIDIR_DATA_DIR={data_dir}"):
        load_lareqa("xquad-r", ["en"])


def test_subset_draws_whole_articles_and_keeps_the_paragraphs_answering_them(xquad):
    full = xquad
    small = subset_lareqa(full, 60)
    assert small.questions.qid.nunique() == 60 and len(small.questions) == 60 * 11
    articles = question_clusters(full, "article")
    kept = articles[list(set(small.questions.qid))]
    counts = kept.value_counts()
    whole = [article for article, n in counts.items() if n == (articles == article).sum()]
    assert len(counts) - len(whole) <= 1  # whole articles, the last one cut
    # random articles, not the first: the first 60 ids would lie in article 1-2 of the file
    assert set(small.questions.qid) != set(full.questions.qid.drop_duplicates().head(60))
    assert subset_lareqa(full, 60).checksum == small.checksum  # seeded
    other = subset_lareqa(full, 60, seed=1)
    assert set(other.questions.qid) != set(small.questions.qid) and other.checksum != small.checksum
    # every kept question still has its 11 answers, one per language, mapped to the new rows
    assert (small.relevance.groupby("qid").size() == 11).all()
    answer_uids = set(small.candidates.uid[small.relevance.candidate])
    full_uids = set(full.candidates.uid[full.relevance.candidate[full.relevance.qid.isin(small.questions.qid)]])
    assert answer_uids == full_uids
    # whole paragraphs: every sentence of an answering paragraph is a candidate
    paragraphs = small.candidates[["language", "paragraph"]].drop_duplicates()
    expected = full.candidates.merge(paragraphs, on=["language", "paragraph"])
    assert len(small.candidates) == len(expected) < len(full.candidates)
    assert small.relevance_matrix().sum() == 60 * 11 * 11
    with pytest.raises(ValueError, match="positive integer"):
        subset_lareqa(full, 0)


def test_question_clusters_are_xquad_r_articles_and_paragraphs(xquad):
    """XQuAD-R: 48 articles, 240 paragraphs, 1,190 ids; the same cluster whichever language's file is read."""
    articles, paragraphs = question_clusters(xquad, "article"), question_clusters(xquad, "paragraph")
    assert len(articles) == xquad.questions.qid.nunique() == 1190
    assert articles.nunique() == 48 and paragraphs.nunique() == 240
    german = load_lareqa("xquad-r", ["de", "en"])
    assert (question_clusters(german, "paragraph").str.split(":").str[1]
            == paragraphs[question_clusters(german, "paragraph").index].str.split(":").str[1]).all()
    with pytest.raises(ValueError, match="level must be 'article' or 'paragraph'"):
        question_clusters(xquad, "sentence")


def test_subset_of_mlqa_r_keeps_every_language(mlqa):
    small = subset_lareqa(mlqa, 70)
    assert small.questions.qid.nunique() == 70
    per_language = small.questions.groupby("language").size()
    assert set(per_language.index) == set(MLQA_R_LANGUAGES) and per_language.min() >= 10
