"""Data loaders: LAReQA (XQuAD-R, MLQA-R), SQuADShifts, BEIR and MIRACL, from pinned public sources."""

from hybridir.data.beir import BeirDataset, load_beir
from hybridir.data.lareqa import DATASETS, MLQA_R_LANGUAGES, XQUAD_R_LANGUAGES, LAReQA, load_lareqa, subset_lareqa
from hybridir.data.miracl import MIRACL_LANGUAGES, load_miracl_qrels, load_miracl_topics, stream_miracl_corpus
from hybridir.data.parallel import (
    ISO_639_1, MMARCO_LANGUAGES, ParallelQA, lareqa_parallel, load_mmarco, load_parallel_jsonl, squadshifts_pairs,
)
from hybridir.data.sources import checksum, resolve, resolve_beir
from hybridir.data.squadshifts import SQUADSHIFTS_NAMES, load_squadshifts

__all__ = [
    "DATASETS",
    "ISO_639_1",
    "MIRACL_LANGUAGES",
    "MLQA_R_LANGUAGES",
    "MMARCO_LANGUAGES",
    "SQUADSHIFTS_NAMES",
    "XQUAD_R_LANGUAGES",
    "BeirDataset",
    "LAReQA",
    "ParallelQA",
    "checksum",
    "lareqa_parallel",
    "load_beir",
    "load_lareqa",
    "load_miracl_qrels",
    "load_miracl_topics",
    "load_mmarco",
    "load_parallel_jsonl",
    "load_squadshifts",
    "resolve",
    "resolve_beir",
    "squadshifts_pairs",
    "stream_miracl_corpus",
    "subset_lareqa",
]
