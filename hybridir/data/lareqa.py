"""LAReQA: XQuAD-R and MLQA-R as language-agnostic answer-sentence retrieval.

The conversion follows Google's LAReQA code (XTREME ``third_party/utils_lareqa.py``):

- every sentence of every paragraph is a candidate, duplicates included, with uid
  ``{lang}_{paragraph}_{sentence_index}`` (paragraph counts from 1 within the language file,
  sentence_index from 0);
- a question's answer sentence is the one whose ``[start, end)`` span in ``sentence_breaks``
  contains ``answers[0]['answer_start']``; a question whose answer start lies in no span is
  dropped and listed in :attr:`LAReQA.skipped`;
- question ids are shared across languages, so the relevant set of a question is every loaded
  candidate, in any language, that answers its id.

Candidate text: ``sentences[i]``, which equals ``context[start:end]`` everywhere except two
Turkish XQuAD-R sentences. There the context holds a mis-decoded character (three characters
for one) that shifts the later breaks by two, so the span gives broken text (". İki …
göstermekte") while ``sentences[i]`` is the intended sentence. Answer starts index the context
as stored, so answers are still mapped through the spans.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hybridir.data import sources

XQUAD_R_LANGUAGES: tuple[str, ...] = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
MLQA_R_LANGUAGES: tuple[str, ...] = ("ar", "de", "en", "es", "hi", "vi", "zh")
DATASETS: dict[str, tuple[str, ...]] = {"xquad-r": XQUAD_R_LANGUAGES, "mlqa-r": MLQA_R_LANGUAGES}


@dataclass(frozen=True, eq=False)  # eq=False: comparing DataFrames field by field is ambiguous
class LAReQA:
    """One LAReQA dataset over a chosen set of languages. Shared through a cache: do not mutate."""

    name: str
    languages: tuple[str, ...]
    questions: pd.DataFrame
    candidates: pd.DataFrame
    relevance: pd.DataFrame
    skipped: pd.DataFrame
    checksum: str

    def relevance_matrix(self, question_rows: np.ndarray | None = None,
                         candidate_rows: np.ndarray | None = None) -> sp.csr_matrix:
        """Boolean (questions × candidates) matrix: True where the candidate answers the question.

        ``question_rows`` and ``candidate_rows`` are row numbers of :attr:`questions` and
        :attr:`candidates`; the defaults take all rows.
        """
        matrix = self._full_relevance
        if question_rows is not None:
            matrix = matrix[_row_numbers(question_rows, matrix.shape[0], "question_rows")]
        if candidate_rows is not None:
            matrix = matrix[:, _row_numbers(candidate_rows, matrix.shape[1], "candidate_rows")]
        return matrix.copy()  # never hand out the cached matrix itself

    @functools.cached_property
    def _full_relevance(self) -> sp.csr_matrix:
        pairs = self.questions[["qid"]].reset_index(names="row").merge(self.relevance, on="qid")
        return sp.csr_matrix((np.ones(len(pairs), dtype=bool), (pairs["row"], pairs["candidate"])),
                             shape=(len(self.questions), len(self.candidates)))


def load_lareqa(name: str, languages: Sequence[str] | None = None) -> LAReQA:
    """Load ``"xquad-r"`` or ``"mlqa-r"`` for ``languages`` (default: all, in canonical order)."""
    if name not in DATASETS:
        raise ValueError(f"unknown LAReQA dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    valid = DATASETS[name]
    if isinstance(languages, str):
        raise ValueError(f"languages must be a sequence of codes such as ['en'], not the string {languages!r}")
    chosen = valid if languages is None else tuple(languages)
    unknown = [lang for lang in chosen if lang not in valid]
    if unknown:
        raise ValueError(f"{name} has no language {', '.join(map(repr, unknown))}; choose from: {', '.join(valid)}")
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"languages must be non-empty and without repeats, got {list(chosen)}")
    files = tuple(sources.resolve(f"lareqa/{name}/{lang}.json") for lang in chosen)
    # Size and mtime join the cache key so that an edited file is parsed again.
    stamps = tuple((f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _load(name, chosen, files, stamps)


def question_clusters(data: LAReQA, level: str = "article") -> pd.Series:
    """Each question id's article (or paragraph), the unit its questions share a topic and answer text in: the
    one of its English answer (MLQA-R's questions all have one; XQuAD-R's files are parallel), else of its answer
    in the first of ``data.languages`` that has it."""
    if level not in ("article", "paragraph"):
        raise ValueError(f"level must be 'article' or 'paragraph', got {level!r}")
    answers = data.relevance.merge(data.candidates[["language", level]], left_on="candidate", right_index=True)
    preference = sorted(data.languages, key=lambda lang: lang != "en")  # English first, then the given order
    answers["order"] = answers.language.map({lang: i for i, lang in enumerate(preference)})
    first = answers.sort_values(["order", "candidate"], kind="stable").drop_duplicates("qid")
    return pd.Series((first.language + ":" + first[level].astype(str)).to_numpy(), index=first.qid.to_numpy(), name=level)


def subset_lareqa(data: LAReQA, max_question_ids: int, seed: int = 0) -> LAReQA:
    """``max_question_ids`` question ids drawn by article and, in every language, the paragraphs answering them.

    Articles are taken whole, in a random order fixed by ``seed``, until the ids reach ``max_question_ids``;
    the last one contributes its paragraphs in order up to that number. A random draw of topics, unlike the
    first N ids (the first 300 of XQuAD-R come from 12 of its 48 articles). The pools shrink with the
    questions, so scores are higher than on the full set: this is for checkpoint curves and quick real runs
    (the smoke preset, tests), not for numbers compared with the paper.
    """
    if isinstance(max_question_ids, bool) or not isinstance(max_question_ids, int) or max_question_ids < 1:
        raise ValueError(f"max_question_ids must be a positive integer, got {max_question_ids!r}")
    articles, paragraphs = question_clusters(data, "article"), question_clusters(data, "paragraph")
    order = np.random.default_rng(seed).permutation(np.unique(articles.to_numpy()))
    rank = {article: i for i, article in enumerate(order)}
    # qids by (drawn article, paragraph in file order, qid in file order)
    first_seen = {qid: i for i, qid in enumerate(data.questions.qid.drop_duplicates())}
    qids = sorted(articles.index, key=lambda qid: (rank[articles[qid]], _paragraph_number(paragraphs[qid]),
                                                   first_seen[qid]))
    kept_ids = set(qids[:max_question_ids])
    answers = data.relevance[data.relevance.qid.isin(kept_ids)]
    answering = data.candidates.loc[answers.candidate, ["language", "paragraph"]].drop_duplicates()
    candidates = data.candidates.merge(answering.assign(keep=True), on=["language", "paragraph"], how="left")
    new_row = np.full(len(data.candidates), -1, dtype=np.int64)
    kept_rows = np.flatnonzero(candidates.keep.fillna(False).to_numpy(dtype=bool))
    new_row[kept_rows] = np.arange(len(kept_rows))
    return LAReQA(
        name=data.name, languages=data.languages,
        questions=data.questions[data.questions.qid.isin(kept_ids)].reset_index(drop=True),
        candidates=data.candidates.iloc[kept_rows].reset_index(drop=True),
        relevance=answers.assign(candidate=new_row[answers.candidate.to_numpy()]).reset_index(drop=True),
        skipped=data.skipped[data.skipped.qid.isin(kept_ids)].reset_index(drop=True),
        checksum=f"{data.checksum}:{max_question_ids}-ids-by-article-seed-{seed}",
    )


def _paragraph_number(cluster: str) -> int:
    return int(cluster.rsplit(":", 1)[1])


@functools.lru_cache(maxsize=16)
def _load(name: str, languages: tuple[str, ...], files: tuple[Path, ...],
          stamps: tuple[tuple[int, int], ...]) -> LAReQA:
    """Parse the files and assemble the frames; ``stamps`` only keys the cache."""
    questions, candidates, answers, skipped = [], [], [], []
    for lang, path in zip(languages, files):
        parsed = _parse_file(path, lang)
        offset = sum(len(c) for c in candidates)
        questions.append(parsed.questions)
        candidates.append(parsed.candidates)
        answers.append(offset + parsed.answer_rows)
        skipped.append(parsed.skipped)
    questions_df = pd.concat(questions, ignore_index=True)
    relevance = pd.DataFrame({"qid": questions_df["qid"], "candidate": np.concatenate(answers).astype(np.int64)})
    return LAReQA(name=name, languages=languages, questions=questions_df,
                  candidates=pd.concat(candidates, ignore_index=True), relevance=relevance,
                  skipped=pd.concat(skipped, ignore_index=True), checksum=sources.checksum(files))


@dataclass(frozen=True)
class _ParsedFile:
    questions: pd.DataFrame  # language, qid, text
    candidates: pd.DataFrame  # language, uid, article, paragraph, sentence_index, sentence, context
    answer_rows: np.ndarray  # per question, its answer's row within this file's candidates
    skipped: pd.DataFrame  # language, qid, reason


def _parse_file(path: Path, lang: str) -> _ParsedFile:
    """Parse one SQuAD-with-sentence-breaks file; raise ValueError naming the file if malformed."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid UTF-8 JSON ({exc})") from exc
    qids, texts, answer_rows, skipped = [], [], [], []
    uids, articles, paragraphs, positions, sentences, contexts = [], [], [], [], [], []
    seen: set[str] = set()
    where, number = "top level", 0
    try:
        for article_number, article in enumerate(data["data"], start=1):
            for paragraph in article["paragraphs"]:
                number += 1
                where = f"paragraph {number}"
                context, breaks, texts_i = paragraph["context"], paragraph["sentence_breaks"], paragraph["sentences"]
                first_row = len(uids)
                _check_breaks(path, where, context, breaks, texts_i)
                for i, sentence in enumerate(texts_i):
                    uids.append(f"{lang}_{number}_{i}")
                    articles.append(article_number)
                    paragraphs.append(number)
                    positions.append(i)
                    sentences.append(sentence)
                    contexts.append(context)
                for qa in paragraph["qas"]:
                    qid = qa["id"]
                    where = f"paragraph {number}, question {qid!r}"
                    if qid in seen:
                        raise ValueError(f"{path}: {where}: the question id occurs twice")
                    seen.add(qid)
                    start = qa["answers"][0]["answer_start"]
                    if not isinstance(start, int):
                        raise ValueError(f"{path}: {where}: answer_start must be an integer, got {start!r}")
                    hit = next((i for i, (s, e) in enumerate(breaks) if s <= start < e), None)
                    if hit is None:
                        skipped.append((lang, qid, f"answer start {start} lies in no sentence of paragraph {number}"))
                        continue
                    qids.append(qid)
                    texts.append(qa["question"])
                    answer_rows.append(first_row + hit)
    except KeyError as exc:
        raise ValueError(f"{path}: {where}: missing key {exc}; expected SQuAD JSON with sentence_breaks") from exc
    except IndexError as exc:
        raise ValueError(f"{path}: {where}: the answers list is empty") from exc
    except TypeError as exc:
        raise ValueError(f"{path}: {where}: unexpected structure ({exc})") from exc
    return _ParsedFile(
        questions=pd.DataFrame({"language": lang, "qid": qids, "text": texts},
                               columns=["language", "qid", "text"]),
        candidates=pd.DataFrame({"language": lang, "uid": uids, "article": np.array(articles, dtype=np.int64),
                                 "paragraph": np.array(paragraphs, dtype=np.int64),
                                 "sentence_index": np.array(positions, dtype=np.int64), "sentence": sentences,
                                 "context": contexts},
                                columns=["language", "uid", "article", "paragraph", "sentence_index", "sentence",
                                         "context"]),
        answer_rows=np.array(answer_rows, dtype=np.int64),
        skipped=pd.DataFrame(skipped, columns=["language", "qid", "reason"]),
    )


def _check_breaks(path: Path, where: str, context: str, breaks: list, sentences: list) -> None:
    """Breaks must be ordered, non-overlapping spans inside the context, one per sentence."""
    if len(breaks) != len(sentences):
        raise ValueError(f"{path}: {where}: {len(breaks)} sentence_breaks but {len(sentences)} sentences")
    previous_end = 0
    for span in breaks:
        ok = isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span)
        if not (ok and previous_end <= span[0] < span[1] <= len(context)):
            raise ValueError(f"{path}: {where}: sentence break {span} is not an ordered, non-overlapping "
                             f"[start, end) span of the {len(context)}-character context")
        previous_end = span[1]


def _row_numbers(rows: np.ndarray, size: int, name: str) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.ndim != 1 or not (rows.size == 0 or np.issubdtype(rows.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D array of integer row numbers, got dtype {rows.dtype} "
                         f"and shape {rows.shape}")
    if rows.size and (rows.min() < 0 or rows.max() >= size):
        raise ValueError(f"{name} must lie in [0, {size}), got values from {rows.min()} to {rows.max()}")
    return rows.astype(np.intp, copy=False)
