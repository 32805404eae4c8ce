"""Parallel QA training data: question-answer items under a shared id, in one or more languages.

A multilingual dual encoder learns from the same item in several languages (query in one,
answer in another), so every source here becomes a :class:`ParallelQA`: one row per
``(id, language)`` with the query, its positive passage and, where the source has one, a hard
negative. Sources:

- :func:`load_parallel_jsonl`: a user's own (e.g. machine-translated) data, one JSON object a line;
- :func:`lareqa_parallel`: XQuAD-R / MLQA-R questions with their answer sentence per language;
- :func:`squadshifts_pairs`: English SQuADShifts (question, answer sentence) pairs for validation;
- :func:`load_mmarco`: mMARCO's translated MS MARCO training triples.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import reprlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import sentencex

from hybridir.data import sources
from hybridir.data.lareqa import load_lareqa
from hybridir.data.squadshifts import load_squadshifts

# The 184 two-letter codes of ISO 639-1 (including the deprecated but still listed "sh"); hard-coded
# because no light, maintained package lists just these (pycountry ships every ISO 3166/639 table).
ISO_639_1: frozenset[str] = frozenset("""
aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en
eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja
jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb
nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg sh si sk sl sm sn so
sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
""".split())

# mMARCO names its files by English language name; the pairs use ISO 639-1 codes like every other source.
MMARCO_LANGUAGES: dict[str, str] = {
    "ar": "arabic", "de": "german", "en": "english", "es": "spanish", "fr": "french", "hi": "hindi",
    "id": "indonesian", "it": "italian", "ja": "japanese", "nl": "dutch", "pt": "portuguese", "ru": "russian",
    "vi": "vietnamese", "zh": "chinese",
}

_REQUIRED = ("id", "language", "query", "positive")
JSONL_FIELDS = (*_REQUIRED, "negative")  # a line's fields, in the order of a row
_MMARCO_TRIPLES = "data/triples.train.ids.small.tsv"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class JsonlError(ValueError):
    """A JSONL file of training pairs that breaks the format: the message names the line and the fix."""


@dataclass(frozen=True, eq=False)  # eq=False: comparing DataFrames field by field is ambiguous
class ParallelQA:
    """Parallel QA training data: one row per (id, language)."""

    name: str
    # columns exactly id, language, query, positive[, negative]: non-empty strings, one row per (id, language)
    pairs: pd.DataFrame
    checksum: str  # sha256-based identity of the source files or content

    def __post_init__(self) -> None:
        """Check the invariants the sampler relies on, so that a hand-built instance cannot break it."""
        columns = list(self.pairs.columns)
        if columns not in (list(_REQUIRED), list(JSONL_FIELDS)):
            raise ValueError(f"ParallelQA {self.name!r}: pairs columns must be {list(_REQUIRED)} plus optionally "
                             f"'negative', in that order; got {columns}")
        for column in columns:
            values = self.pairs[column].tolist()
            bad = next((i for i, v in enumerate(values) if not (isinstance(v, str) and v.strip())), None)
            if bad is not None:
                raise ValueError(f"ParallelQA {self.name!r}: {column} of row {bad} is {reprlib.repr(values[bad])}; "
                                 "every value must be a non-empty string")
        unknown = sorted(set(self.pairs["language"]) - ISO_639_1)
        if unknown:
            raise ValueError(f"ParallelQA {self.name!r}: unknown language code(s) {', '.join(map(repr, unknown))}; "
                             "use lowercase ISO 639-1 two-letter codes such as 'de'")
        repeated = self.pairs.duplicated(["id", "language"])
        if repeated.any():
            row = self.pairs[repeated].iloc[0]
            raise ValueError(f"ParallelQA {self.name!r}: (id, language) = ({row['id']!r}, {row['language']!r}) "
                             "occurs twice; keep one row per id and language")

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(self.pairs["language"].unique()))

    @property
    def has_negatives(self) -> bool:
        return "negative" in self.pairs.columns

    @property
    def n_items(self) -> int:
        return int(self.pairs["id"].nunique())


# --- user data: JSONL -------------------------------------------------------------------------------------


def load_parallel_jsonl(path: str | os.PathLike[str]) -> ParallelQA:
    """Read parallel QA from JSON Lines: one object per line, UTF-8, no blank lines.

    Each line is ``{"id": "q1", "language": "de", "query": "…", "positive": "…", "negative": "…"}``:
    ``id`` (a string or integer, stored as a string) is shared by the translations of one item;
    ``language`` is a lowercase ISO 639-1 code; ``negative`` (a hard negative) is optional but then
    on every line or on none. No other field is allowed, so that a misspelt one is not silently
    ignored. The name is the file's stem.
    """
    path = Path(path)
    rows: list[tuple[str, ...]] = []
    seen: dict[tuple[str, str], int] = {}
    with open(path, "rb") as handle:  # bytes: split on "\n" only, and report bad UTF-8 by line
        for number, raw in enumerate(handle, start=1):
            where = f"{path}: line {number}"
            row = parse_jsonl_line(raw, number, where)
            if rows and len(row) != len(rows[0]):
                raise negative_mismatch(where, has_negative=len(row) == len(JSONL_FIELDS))
            key = (row[0], row[1])
            if key in seen:
                raise JsonlError(f"{where}: (id, language) = {key} already on line {seen[key]}; keep one line per "
                                 "id and language")
            seen[key] = number
            rows.append(row)
    if not rows:
        raise JsonlError(f"{path}: the file is empty; write one JSON object per line, e.g. "
                         '{"id": "q1", "language": "de", "query": "…", "positive": "…"}')
    pairs = pd.DataFrame(rows, columns=list(JSONL_FIELDS[:len(rows[0])]))
    return ParallelQA(name=path.stem, pairs=pairs, checksum=sources.checksum([path]))


def negative_mismatch(where: str, has_negative: bool) -> JsonlError:
    """The error of a line that gives a negative where line 1 gives none, or the other way round."""
    has, first = ("has", "does not") if has_negative else ("has no", "does")
    return JsonlError(f"{where}: {has} 'negative' but line 1 {first}; give a negative on every line or on none")


def parse_jsonl_line(raw: bytes, number: int, where: str) -> tuple[str, ...]:
    """One JSONL line as ``(id, language, query, positive[, negative])``; ValueError saying what to fix."""
    try:
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # tolerate an editor's byte-order mark
    except UnicodeDecodeError as exc:
        raise JsonlError(f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start}); save the file as "
                         "UTF-8") from exc
    if not text.strip():
        raise JsonlError(f"{where}: blank line; remove it (JSONL has one JSON object on every line)")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonlError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); write one JSON object "
                         "per line") from exc
    if not isinstance(record, dict):
        raise JsonlError(f"{where}: expected a JSON object with fields {', '.join(_REQUIRED)}, got "
                         f"{reprlib.repr(record)}")
    unknown = [key for key in record if key not in JSONL_FIELDS]
    if unknown:
        raise JsonlError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(JSONL_FIELDS)}")
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise JsonlError(f"{where}: missing field(s) {', '.join(map(repr, missing))}; every line needs "
                         f"{', '.join(_REQUIRED)}")
    item_id = record["id"]
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        item_id = str(item_id)
    if not (isinstance(item_id, str) and item_id.strip()):
        raise JsonlError(f"{where}: 'id' must be a non-empty string or an integer, got {reprlib.repr(record['id'])}")
    language = record["language"]
    if not isinstance(language, str) or language not in ISO_639_1:
        raise JsonlError(f"{where}: unknown language code {reprlib.repr(language)}; use a lowercase ISO 639-1 "
                         "two-letter code such as 'de'")
    texts = [key for key in JSONL_FIELDS[2:] if key in record]
    for key in texts:
        value = record[key]
        if not (isinstance(value, str) and value.strip()):
            raise JsonlError(f"{where}: {key!r} must be a non-empty string, got {reprlib.repr(value)}")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:  # json.loads accepts "\ud800", which no UTF-8 text can hold
                raise JsonlError(f"{where}: {key!r} holds an unpaired surrogate escape at character {exc.start}; "
                                 "write the character itself or its complete surrogate pair") from exc
    return (item_id, language, *(record[key] for key in texts))


# --- LAReQA -----------------------------------------------------------------------------------------------


def lareqa_parallel(name: str, languages: Sequence[str] | None = None) -> ParallelQA:
    """XQuAD-R or MLQA-R as parallel pairs: each question with its answer sentence in its own language.

    The positive is the candidate of the question's language that the relevance table marks as
    answering its id (``sentences[i]``, see :mod:`hybridir.data.lareqa`). XQuAD-R gives
    1190 ids × 11 languages; MLQA-R 1148 ids, each in English and 1-3 more languages. Rows are
    sorted by (id, language).
    """
    data = load_lareqa(name, languages)
    answers = data.relevance.merge(data.candidates[["language", "sentence"]], left_on="candidate", right_index=True)
    pairs = data.questions.merge(answers, on=["qid", "language"], how="left", validate="one_to_one")
    pairs = (pairs.rename(columns={"qid": "id", "text": "query", "sentence": "positive"})[list(_REQUIRED)]
             .sort_values(["id", "language"], ignore_index=True))
    return ParallelQA(name=name, pairs=pairs, checksum=f"{data.checksum}:parallel")


# --- SQuADShifts ------------------------------------------------------------------------------------------


def squadshifts_pairs(name: str = "new_wiki", max_pairs: int | None = None, seed: int = 0) -> ParallelQA:
    """English (question, answer sentence) pairs from SQuADShifts, for validation.

    The files have no sentence breaks, so each context is split with Wikimedia's ``sentencex``
    and the answer sentence is the one holding ``answer_start``. Only the first question (in file
    order) of each distinct answer sentence is kept, so that a batch never holds two identical
    positives, which would be false negatives of each other.

    Measured with sentencex 1.0.32: new_wiki's 7938 questions give 5274 pairs; 2664 are dropped as
    repeats of an answer sentence and none for an answer start outside every sentence. 5268 of
    the 5274 positives (99.9 %) contain the whole answer text; in the other 6 the answer runs
    past a sentence break. (reddit: 9803 → 7229, amazon_reviews: 9885 → 7876.)

    ``max_pairs`` keeps a random subset drawn with ``numpy.random.default_rng(seed)``, in file order.
    """
    if max_pairs is not None and max_pairs < 1:
        raise ValueError(f"max_pairs must be at least 1 (or None for all pairs), got {max_pairs}")
    frame = load_squadshifts(name)
    spans = {context: _sentence_spans(context) for context in frame["context"].unique()}
    positives = [next((context[s:e] for s, e in spans[context] if s <= start < e), None)
                 for context, start in zip(frame["context"], frame["answer_start"])]
    pairs = pd.DataFrame({"id": frame["qid"], "language": "en", "query": frame["question"],
                          "positive": pd.Series(positives, dtype=object)})
    pairs = pairs.dropna(subset=["positive"]).drop_duplicates("positive").astype(str).reset_index(drop=True)
    file_checksum = sources.checksum([sources.resolve(f"squadshifts/{name}_v1.0.json")])
    checksum = f"{file_checksum}:pairs:sentencex-{metadata.version('sentencex')}"  # the splitter shapes the pairs
    if max_pairs is not None:
        if max_pairs > len(pairs):
            raise ValueError(f"max_pairs={max_pairs} exceeds the {len(pairs)} pairs of SQuADShifts {name}; "
                             "ask for fewer or pass None")
        rows = np.sort(np.random.default_rng(seed).choice(len(pairs), size=max_pairs, replace=False))
        pairs = pairs.iloc[rows].reset_index(drop=True)
        checksum += f":{max_pairs}-seed-{seed}"
    return ParallelQA(name=f"squadshifts-{name}", pairs=pairs, checksum=checksum)


def _sentence_spans(context: str) -> list[tuple[int, int]]:
    """``[start, end)`` of each sentence, found in order in ``context`` (sentencex gives text, not offsets).

    Sentences are stripped of surrounding whitespace; one that cannot be found after the previous
    one is left out, so answers inside it count as outside every sentence.
    """
    spans, end = [], 0
    for piece in sentencex.segment("en", context):
        sentence = piece.strip()
        start = context.find(sentence, end) if sentence else -1
        if start >= 0:
            end = start + len(sentence)
            spans.append((start, end))
    return spans


# --- mMARCO -----------------------------------------------------------------------------------------------


def load_mmarco(languages: Sequence[str], max_queries: int | None = None,
                source: str = "unicamp-dl/mmarco") -> ParallelQA:
    """mMARCO (Bonifacio et al., 2021) training triples, translated into ``languages`` (ISO 639-1 codes).

    Reads the hub dataset's files (``source`` is a hub id, read through ``hf://datasets/…``) or a
    local folder with the same layout: ``data/triples.train.ids.small.tsv`` (``qid, pos_pid,
    neg_pid``, shared by every language), ``data/google/queries/train/<name>_queries.train.tsv``
    and ``data/google/collections/<name>_collection.tsv`` (``id<TAB>text``), ``<name>`` being
    the English language name (``german``). Translations share ids, so rows align across
    languages; the id of an item is the 1-based line number of its triple.

    Keeps the first triple of each of the first ``max_queries`` distinct queries (all if None; fewer if the
    file has fewer), so no two items share a query: the paper counts mMARCO in triples, many per query that
    differ in their negative only, but two triples of one query can never share a batch (their query is the
    same text), so an epoch over triples would repeat each query's positive pair once per triple. Each language's collection is scanned until every
    needed passage is found: from the hub that streams most of a ~3 GB file per language, so for
    repeated use download the files once and pass the folder.
    """
    if isinstance(languages, str):
        raise ValueError(f"languages must be a sequence of codes such as ['en', 'de'], not the string {languages!r}")
    unknown = [lang for lang in languages if lang not in MMARCO_LANGUAGES]
    if unknown:
        raise ValueError(f"mMARCO has no language {', '.join(map(repr, unknown))}; choose from: "
                         f"{', '.join(MMARCO_LANGUAGES)}")
    if not languages or len(set(languages)) != len(languages):
        raise ValueError(f"languages must be non-empty and without repeats, got {list(languages)}")
    if max_queries is not None and max_queries < 1:
        raise ValueError(f"max_queries must be at least 1 (or None for all), got {max_queries}")
    files = [_MMARCO_TRIPLES] + [f"data/google/{kind}/{MMARCO_LANGUAGES[lang]}_{suffix}" for lang in languages
                                 for kind, suffix in (("queries/train", "queries.train.tsv"),
                                                      ("collections", "collection.tsv"))]
    if Path(source).is_dir():
        root = str(Path(source).resolve())
        missing = [f for f in files if not Path(root, f).is_file()]
        if missing:
            raise FileNotFoundError(f"{Path(root, missing[0])} is missing; a local mMARCO copy needs the hub's layout: "
                                    f"{', '.join(files)}")
        return _read_mmarco(root, languages, max_queries)
    if not _REPO_ID.fullmatch(source):
        raise FileNotFoundError(f"source={source!r} is neither a local folder nor a hub dataset id such as "
                                "'unicamp-dl/mmarco'")
    from huggingface_hub.errors import HTTPError  # the hub client's (httpx) transport errors are not OSErrors

    try:
        return _read_mmarco(f"hf://datasets/{source}", languages, max_queries)
    except (OSError, HTTPError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConnectionError(f"cannot read mMARCO from the Hugging Face hub, source={source!r} ({reason}); for a "
                              f"local copy run `hf download {source} {' '.join(files)} --repo-type dataset "
                              "--local-dir DIR` where there is network and pass source='DIR'") from exc


def _read_mmarco(root: str, languages: Sequence[str], max_queries: int | None) -> ParallelQA:
    triples: list[tuple[str, str, str, str]] = []  # (id, qid, positive pid, negative pid)
    queries: set[str] = set()
    for number, line in enumerate(_lines(f"{root}/{_MMARCO_TRIPLES}"), start=1):
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{root}/{_MMARCO_TRIPLES}: line {number} has {len(fields)} tab-separated fields, "
                             "expected 3 (qid, positive pid, negative pid)")
        if fields[0] not in queries:
            queries.add(fields[0])
            triples.append((str(number), *fields))
            if len(triples) == max_queries:
                break
    if not triples:
        raise ValueError(f"{root}/{_MMARCO_TRIPLES} holds no triples")
    passages = {pid for _, _, positive, negative in triples for pid in (positive, negative)}
    texts = {lang: (_lookup(f"{root}/data/google/queries/train/{MMARCO_LANGUAGES[lang]}_queries.train.tsv", queries),
                    _lookup(f"{root}/data/google/collections/{MMARCO_LANGUAGES[lang]}_collection.tsv", passages))
             for lang in languages}
    pairs = pd.DataFrame([(item, lang, texts[lang][0][q], texts[lang][1][p], texts[lang][1][n])
                          for item, q, p, n in triples for lang in sorted(languages)], columns=list(JSONL_FIELDS))
    digest = hashlib.sha256()  # of the content, not the files: the hub's files are too large to hash
    for row in pairs.itertuples(index=False):
        digest.update(json.dumps(list(row), ensure_ascii=False).encode())
    return ParallelQA(name="mmarco", pairs=pairs, checksum=f"sha256-content:{digest.hexdigest()}")


def _lookup(path: str, wanted: set[str]) -> dict[str, str]:
    """Texts of the ``wanted`` ids in an ``id<TAB>text`` file, reading only until all are found."""
    found: dict[str, str] = {}
    for number, line in enumerate(_lines(path), start=1):
        item_id, tab, text = line.partition("\t")
        if not tab:
            raise ValueError(f"{path}: line {number} has no tab; expected id<TAB>text")
        if item_id in wanted:
            if not text.strip():
                raise ValueError(f"{path}: line {number}: id {item_id} has an empty text; fix or drop the line")
            found[item_id] = text
            if len(found) == len(wanted):
                return found
    missing = sorted(wanted - set(found))
    raise ValueError(f"{path}: {len(missing)} needed id(s) are missing, e.g. {missing[0]}; is the file complete?")


def _lines(path: str) -> Iterator[str]:
    """Stream the lines of a local or ``hf://`` file through datasets' generic text builder, with a progress bar
    (the hub's files are gigabytes)."""
    from datasets import load_dataset  # heavy to import; only mMARCO needs it
    from tqdm.auto import tqdm

    with tqdm(desc=path.rsplit("/", 1)[-1], unit=" lines", unit_scale=True) as progress:
        for batch in load_dataset("text", data_files=path, split="train", streaming=True).iter(batch_size=10_000):
            progress.update(len(batch["text"]))
            yield from batch["text"]
