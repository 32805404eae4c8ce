"""Data loaders: LAReQA (XQuAD-R, MLQA-R), SQuADShifts, BEIR and MIRACL, from pinned public sources."""

from hybridir.data.beir import BeirDataset, load_beir
from hybridir.data.lareqa import DATASETS, MLQA_R_LANGUAGES, XQUAD_R_LANGUAGES, LAReQA, load_lareqa, subset_lareqa
from hybridir.data.miracl import MIRACL_LANGUAGES, load_miracl_corpus, load_miracl_qrels, load_miracl_topics
from hybridir.data.sources import checksum, resolve, resolve_beir
from hybridir.data.squadshifts import SQUADSHIFTS_NAMES, load_squadshifts

__all__ = [
    "DATASETS",
    "MIRACL_LANGUAGES",
    "MLQA_R_LANGUAGES",
    "SQUADSHIFTS_NAMES",
    "XQUAD_R_LANGUAGES",
    "BeirDataset",
    "LAReQA",
    "checksum",
    "load_beir",
    "load_lareqa",
    "load_miracl_corpus",
    "load_miracl_qrels",
    "load_miracl_topics",
    "load_squadshifts",
    "resolve",
    "resolve_beir",
    "subset_lareqa",
]
