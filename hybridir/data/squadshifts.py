"""SQuADShifts v1.0 (Miller et al., 2020): English SQuAD-style QA on new domains.

Used as English validation data. Each row is one question with its first answer; the files
list several crowd answers per question, and the first is the one SQuAD training uses.
"""

from __future__ import annotations

import json

import pandas as pd

from hybridir.data import sources

SQUADSHIFTS_NAMES: tuple[str, ...] = ("new_wiki", "reddit", "amazon_reviews")
_COLUMNS = ["qid", "question", "context", "answer_text", "answer_start", "title"]


def load_squadshifts(name: str) -> pd.DataFrame:
    """One row per question: ``qid, question, context, answer_text, answer_start, title``."""
    if name == "nyt":
        raise ValueError("SQuADShifts 'nyt' is not in the pinned data (its file is not redistributed); "
                         f"choose one of: {', '.join(SQUADSHIFTS_NAMES)}")
    if name not in SQUADSHIFTS_NAMES:
        raise ValueError(f"unknown SQuADShifts set {name!r}; choose one of: {', '.join(SQUADSHIFTS_NAMES)}")
    path = sources.resolve(f"squadshifts/{name}_v1.0.json")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid UTF-8 JSON ({exc})") from exc
    rows, where = [], "top level"
    try:
        for article in data["data"]:
            title = article["title"]
            where = f"article {title!r}"
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                for qa in paragraph["qas"]:
                    where = f"question {qa['id']!r}"
                    answer = qa["answers"][0]
                    rows.append((qa["id"], qa["question"], context, answer["text"], answer["answer_start"], title))
    except KeyError as exc:
        raise ValueError(f"{path}: {where}: missing key {exc}; expected SQuAD v1.1 JSON") from exc
    except IndexError as exc:
        raise ValueError(f"{path}: {where}: the answers list is empty") from exc
    except TypeError as exc:
        raise ValueError(f"{path}: {where}: unexpected structure ({exc})") from exc
    return pd.DataFrame(rows, columns=_COLUMNS).astype({"answer_start": "int64"})
