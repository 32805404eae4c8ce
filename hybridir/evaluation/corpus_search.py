"""Exact dense retrieval over a corpus larger than memory (MIRACL: the paper's 15 languages hold 57.5M passages).

The corpus streams in shards of a fixed number of passages. Each shard is encoded once per model and kept on
disk (fp16 vectors beside its passage ids, written atomically, keyed by the model's fingerprint and the
shard's checksum), so a killed run resumes at the first missing shard, re-reading (streaming again) but not
re-encoding the ones before it, and every evaluation of one model shares them. Encoding spreads over several
devices through sentence-transformers' multi-process pool. Queries meet one shard at a time and faiss keeps
each query's running top-k (``faiss.ResultHeap``): memory holds one shard and the queries whatever the corpus
size, and the result is the exact search over the stored fp16 vectors of the whole corpus.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hybridir.encoding import encode_in_chunks, encoding_pool
from hybridir.models.spec import ModelSpec
from hybridir.paths import cache_dir

SHARD_PASSAGES = 16_384  # 12 MB of fp16 vectors at 384 dimensions; a CPU encodes one in minutes, a GPU in seconds
CHUNK_BATCHES = 8  # batches per encoding call: the unit of work a pool hands to a worker


@dataclass(frozen=True)
class Shard:
    """A run of consecutive passages of a corpus: their ids and the texts the model encodes."""

    doc_ids: list[str]
    texts: list[str]

    @property
    def checksum(self) -> str:
        return hashlib.sha256(json.dumps([self.doc_ids, self.texts], ensure_ascii=False).encode()).hexdigest()[:24]


def shard_path(model: ModelSpec, shard: Shard) -> Path:
    return cache_dir() / "embeddings" / model.fingerprint() / "corpus" / f"passage-{shard.checksum}.npz"


def search_corpus(model: ModelSpec, query_vectors: np.ndarray, query_ids: Sequence[str], shards: Iterable[Shard],
                  *, depth: int = 1000, batch_size: int = 16, devices: Sequence[str] = (),
                  passages: int | None = None, label: str = "corpus") -> dict[str, dict[str, float]]:
    """Exact inner-product top-``depth`` of every query over the stored (fp16) vectors of ``shards``' passages ->
    ``{query_id: {doc_id: score}}``, encoding each shard not yet cached for ``model`` on ``devices`` (several:
    a multi-process pool, started at the first shard to encode; none: this process). ``passages`` (the corpus
    size, if known) sizes the progress bar and the cost estimate printed once encoding has timed this machine."""
    import faiss
    from tqdm.auto import tqdm

    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    queries = np.ascontiguousarray(query_vectors, dtype=np.float32)
    heap = faiss.ResultHeap(len(queries), depth, keep_max=True)
    files, offset = [], 0
    bar = tqdm(total=passages, desc=f"{label}: passages", unit="passage", unit_scale=True, dynamic_ncols=True)
    timing = _CostEstimate(label, passages, devices, bar)
    with bar, ExitStack() as stack:
        pool, started = None, False
        for shard in shards:
            path = shard_path(model, shard)
            if path.exists():
                bar.update(len(shard.doc_ids))
            else:
                if not started:  # a rerun whose shards are all cached starts no worker
                    pool, started = stack.enter_context(encoding_pool(model, devices)), True
                vectors = encode_in_chunks(model, shard.texts, "passage", batch_size=batch_size,
                                           chunk_size=batch_size * CHUNK_BATCHES, pool=pool, done=timing.done)
                _save_shard(path, shard.doc_ids, vectors)
            with np.load(path) as stored:
                vectors = stored["vectors"].astype(np.float32)
            if len(vectors):
                scores, rows = faiss.knn(queries, vectors, min(depth, len(vectors)), metric=faiss.METRIC_INNER_PRODUCT)
                heap.add_result(scores, np.where(rows < 0, -1, rows + offset))  # -1: no result (a NaN score)
            files.append((offset, path))
            offset += len(vectors)
    if not offset:
        raise ValueError(f"{label}: the corpus holds no passage")
    heap.finalize()
    return _named(heap.D, heap.I, query_ids, files, offset)


class _CostEstimate:
    """Prints, once, passages left × the rate of the second encoding step (the first holds the longest texts and
    the warm-up), then moves the progress bar as steps finish."""

    def __init__(self, label: str, passages: int | None, devices: Sequence[str], bar) -> None:
        self.label, self.passages, self.devices, self.bar = label, passages, devices, bar
        self.last: float | None = None
        self.printed = passages is None

    def done(self, n: int) -> None:
        now = time.perf_counter()
        if not self.printed and self.last is not None:
            rate = n / (now - self.last)
            left = max(self.passages - self.bar.n - n, 0)
            where = f"{len(self.devices)} processes ({', '.join(self.devices)})" if len(self.devices) > 1 \
                else "1 process"
            self.bar.write(f"{self.label}: encoding at {rate:,.0f} passages/s on {where}: at most {left:,} passages "
                           f"left, about {left / rate / 3600:.1f} h (cached shards are skipped)", file=sys.stderr)
            self.printed = True
        self.last = now
        self.bar.update(n)


def _save_shard(path: Path, doc_ids: list[str], vectors: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        np.savez(handle, ids=np.asarray(doc_ids, dtype=str), vectors=vectors.astype(np.float16))
    temporary.replace(path)  # a shard on disk is whole: a killed run never leaves half of one


def _named(scores: np.ndarray, rows: np.ndarray, query_ids: Sequence[str],
           files: list[tuple[int, Path]], total: int) -> dict[str, dict[str, float]]:
    """The run with passage ids for global row numbers (-1: fewer passages than ``depth``), read shard by shard:
    ids only, never the corpus's."""
    names = np.full(rows.shape, None, dtype=object)
    for (start, path), end in zip(files, [start for start, _ in files[1:]] + [total]):
        inside = (rows >= start) & (rows < end)
        if inside.any():
            with np.load(path) as stored:
                names[inside] = stored["ids"][rows[inside] - start]
    return {qid: {name: float(score) for name, score in zip(names[i], scores[i]) if name is not None}
            for i, qid in enumerate(query_ids)}


def write_run(path: Path, run: Mapping[str, Mapping[str, float]], depth: int = 100, tag: str = "hybridir") -> Path:
    """A TREC run file (``qid Q0 docid rank score tag``): each query's top ``depth`` by score."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for qid, documents in run.items():
            ranked = sorted(documents.items(), key=lambda item: -item[1])[:depth]
            for rank, (doc_id, score) in enumerate(ranked, start=1):
                handle.write(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")
    return path
