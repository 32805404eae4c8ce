"""A tiny mMARCO in the hub's layout, for the tests that read it."""

from __future__ import annotations

from pathlib import Path


def mmarco_copy(root: Path, n_queries: int, languages=("german", "english")) -> Path:
    """A tiny mMARCO in the hub's layout: triples of ids (two per query, the second never used) and each
    language's queries and collection."""
    data = root / "data"
    (data / "google" / "queries" / "train").mkdir(parents=True)
    (data / "google" / "collections").mkdir(parents=True)
    triples = [(str(q), str(1000 + q), str(2000 + q + k)) for q in range(n_queries) for k in (0, 1)]
    (data / "triples.train.ids.small.tsv").write_text("".join("\t".join(t) + "\n" for t in triples))
    for name in languages:
        (data / "google" / "queries" / "train" / f"{name}_queries.train.tsv").write_text(
            "".join(f"{q}\t{name} question {q}\n" for q in range(n_queries)))
        pids = sorted({int(pid) for t in triples for pid in t[1:]})
        (data / "google" / "collections" / f"{name}_collection.tsv").write_text(
            "".join(f"{pid}\t{name} passage {pid}\n" for pid in pids))
    return root
