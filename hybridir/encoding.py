"""Encode texts once and keep the embeddings on disk.

Every evaluation setting reads the same cached matrices, so a (model, text set, role) is encoded
once however many settings, metrics or reruns use it. The cache key is the model's fingerprint
(settings, prompts, max length, weights digest), the role and a digest of the distinct texts —
the data checksum in effect. Large sets are written in shards, so an interrupted run resumes
where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from hybridir.models.spec import ModelSpec, load_model
from hybridir.paths import cache_dir

Role = Literal["query", "passage"]
Text = str | tuple[str, str]  # a pair is encoded as one input, e.g. (sentence, paragraph)
SHARD_SIZE = 4096
CPU_BATCH_SIZE = 16


def encode(model: ModelSpec, texts: Sequence[Text], role: Role, *, batch_size: int | None = None,
           use_cache: bool = True, show_progress: bool = True, label: str | None = None) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text (duplicates encoded once); the progress bar says
    ``label`` (what the texts are: "xquad-r, 11 languages: questions"), or the role. ``batch_size`` None:
    :func:`default_batch_size`."""
    if role not in ("query", "passage"):
        raise ValueError(f"role must be 'query' or 'passage', got {role!r}")
    batch_size = default_batch_size() if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    unique, inverse = _unique(texts)
    if not unique:
        raise ValueError("nothing to encode: the text list is empty")
    progress = (label or f"{role} texts") if show_progress else None
    if not use_cache:
        return _encode_now(model, unique, role, batch_size, progress)[inverse]
    target = embedding_path(model, unique, role)
    if not target.exists():
        _encode_to_file(model, unique, role, batch_size, progress, target)
    return np.load(target, mmap_mode="r")[inverse]


def default_batch_size() -> int:
    """Texts per encoding batch: 16 on a CPU, where larger batches ran slower (2 cores: full XQuAD-R 1.2x
    faster in batches of 16 than of 64 with OpenVINO bf16, 1.15x with torch fp32;
    results/bench/bench_engines.epyc-avx512-bf16*.txt), 128 on a GPU."""
    import torch

    return 128 if torch.cuda.is_available() else CPU_BATCH_SIZE


def embedding_path(model: ModelSpec, unique_texts: Sequence[Text], role: Role) -> Path:
    digest = hashlib.sha256(json.dumps([role, list(unique_texts)], ensure_ascii=False).encode()).hexdigest()[:20]
    return cache_dir() / "embeddings" / model.fingerprint() / f"{role}-{len(unique_texts)}-{digest}.npy"


def encoding_record(model: ModelSpec, texts: Sequence[Text], role: Role) -> dict | None:
    """What encoding ``texts`` cost when it was cached (texts, seconds, …), or None if not cached."""
    record = embedding_path(model, _unique(texts)[0], role).with_suffix(".json")
    return json.loads(record.read_text()) if record.exists() else None


def _unique(texts: Sequence[Text]) -> tuple[list[Text], np.ndarray]:
    """Distinct texts in a canonical (sorted) order, so any ordering of the same set shares a cache
    entry, and each input's row among them."""
    keys = [_as_key(t) for t in texts]
    unique = sorted(set(keys), key=lambda t: (t,) if isinstance(t, str) else t)
    row = {text: i for i, text in enumerate(unique)}
    return unique, np.fromiter((row[k] for k in keys), dtype=np.int64, count=len(keys))


def _as_key(text: Text) -> Text:
    if isinstance(text, str):
        return text
    if isinstance(text, (tuple, list)) and len(text) == 2 and all(isinstance(t, str) for t in text):
        return tuple(text)
    raise TypeError(f"texts must be strings or (text, text) pairs, got {type(text).__name__}: {text!r:.60}")


def _encode_to_file(model: ModelSpec, texts: list[Text], role: Role, batch_size: int, progress: str | None,
                    target: Path) -> None:
    """Encode shard by shard into ``target.partial/``; finished shards survive an interruption."""
    partial = target.with_suffix(".partial")
    partial.mkdir(parents=True, exist_ok=True)
    shards, seconds, resumed = [], 0.0, 0
    shards_in_all = -(-len(texts) // SHARD_SIZE)
    for start in range(0, len(texts), SHARD_SIZE):
        shard = partial / f"{start:09d}.npy"
        if shard.exists():
            resumed += 1
        else:
            began = time.perf_counter()
            where = f" ({start // SHARD_SIZE + 1}/{shards_in_all})" if progress and shards_in_all > 1 else ""
            vectors = _encode_now(model, texts[start:start + SHARD_SIZE], role, batch_size,
                                  progress and progress + where)
            seconds += time.perf_counter() - began
            _save_atomic(shard, vectors)
        shards.append(shard)
    _save_atomic(target, np.concatenate([np.load(s) for s in shards]))
    # How long encoding took: benchmarks compare other stages against it.
    target.with_suffix(".json").write_text(json.dumps(
        {"texts": len(texts), "seconds": round(seconds, 3), "resumed_shards": resumed, "batch_size": batch_size,
         "model": model.name}, indent=2))
    shutil.rmtree(partial)


def _save_atomic(path: Path, array: np.ndarray) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        np.save(handle, array)
    temporary.replace(path)


def _encode_now(model: ModelSpec, texts: list[Text], role: Role, batch_size: int, progress: str | None) -> np.ndarray:
    """Embeddings of ``texts`` in batches of similar token counts, one ``encode`` call per batch, so that the
    progress bar can say what it encodes (``progress``; None: no bar).

    sentence-transformers sorts by characters, which left 19-27% of the positions in a batch of 16 as padding
    on XQuAD-R; sorting by the token count the model sees (prompt and truncation included) leaves under 3%
    (bench/bench_engines.py). Padding changes no embedding beyond float rounding: attention masks it out."""
    import torch
    from tqdm.auto import tqdm

    encoder = _encoder(model)
    inputs = [t if isinstance(t, str) else list(t) for t in texts]
    order = np.argsort(-_token_counts(encoder, inputs, role), kind="stable")
    vectors = np.empty((len(inputs), encoder.get_embedding_dimension()), dtype=np.float32)
    for start in tqdm(range(0, len(inputs), batch_size), desc=progress, disable=progress is None, unit="batch"):
        rows = order[start:start + batch_size]
        # Normalised here in float32: a bf16 model's own normalisation left norms of 0.998-1.002.
        batch = encoder.encode([inputs[i] for i in rows], prompt_name=role, batch_size=len(rows),
                               convert_to_tensor=True, show_progress_bar=False)
        vectors[rows] = torch.nn.functional.normalize(batch.float(), dim=-1).numpy()
    return vectors


def encoding_devices(devices: Sequence[str] | None) -> list[str]:
    """The devices that encode a large corpus: ``devices`` checked, or by default every GPU where there are
    several, else this process alone (``[]``). Each device is ``cpu`` or ``cuda:N`` of this machine."""
    import torch

    gpus = torch.cuda.device_count()
    if devices is None:
        return [f"cuda:{i}" for i in range(gpus)] if gpus > 1 else []
    choices = ", ".join(["cpu", *(f"cuda:{i}" for i in range(gpus))])
    for device in devices:
        if device != "cpu" and device not in {f"cuda:{i}" for i in range(gpus)}:
            raise ValueError(f"--encode-devices: {device!r} is not a device of this machine ({gpus} GPUs); "
                             f"give some of: {choices}")
    return list(devices)


@contextmanager
def encoding_pool(model: ModelSpec, devices: Sequence[str]) -> Iterator[dict | None]:
    """sentence-transformers' multi-process pool with one worker per device (``["cuda:0", "cuda:1"]``,
    ``["cpu", "cpu"]``), or None, meaning this process (on the one device given, if any), for fewer than two.
    CPU workers share this machine's threads equally: each would otherwise start one thread per core, and they
    would slow one another."""
    if not devices:
        yield None
        return
    if model.engine != "torch":
        raise ValueError(f"--encode-devices runs the torch engine, not {model.engine}; pass --engine torch")
    encoder = _encoder(model)
    home = encoder.device
    if len(devices) == 1:
        encoder.to(devices[0])
        try:
            yield None
        finally:
            encoder.to(home)
        return
    import signal
    import threading

    import torch

    cpu_workers = sum(device == "cpu" for device in devices)
    threads = str(max(1, torch.get_num_threads() // max(1, cpu_workers)))
    previous = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = threads  # read by each spawned worker's torch at import
    try:
        pool = encoder.start_multi_process_pool(list(devices))
    except BaseException:
        encoder.to(home)  # starting the pool moves the model to the CPU first
        raise
    finally:
        if previous is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = previous
    # A plain `kill` (SIGTERM) would end this process without stopping the workers, which wait on their queue
    # holding a GPU each: made an exit that runs the `finally` below. (SIGKILL cannot be caught.)
    main_thread = threading.current_thread() is threading.main_thread()
    terminate = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main_thread else None
    try:
        yield pool
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, terminate)
        encoder.stop_multi_process_pool(pool)
        encoder.to(home)  # starting the pool moved the model to the CPU


def _exit_on_sigterm(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


def encode_in_chunks(model: ModelSpec, texts: Sequence[str], role: Role, *, batch_size: int, chunk_size: int,
                     pool: dict | None = None, done: Callable[[int], None] | None = None) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts`` in input order, ``chunk_size`` texts (of similar token
    counts) per ``encode`` call, in this process or as one task of ``pool``: the same chunks either way, so one
    process and several on one kind of device compute the same batches (on this machine's CPU: the same vectors
    to the bit, tests/test_corpus_search.py). ``done(n)`` is called as each n texts are encoded."""
    import torch

    if chunk_size < batch_size:
        raise ValueError(f"chunk_size ({chunk_size}) must hold at least one batch ({batch_size})")
    encoder = _encoder(model)
    order = np.argsort(-_token_counts(encoder, list(texts), role), kind="stable")
    ordered = [texts[i] for i in order]
    options = dict(prompt_name=role, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False)
    # A pool gets as many chunks at a time as keep every worker busy twice over, so progress comes in steps.
    step = chunk_size * (2 * len(pool["processes"]) if pool else 1)
    vectors = np.empty((len(ordered), encoder.get_embedding_dimension()), dtype=np.float32)
    for start in range(0, len(ordered), step):
        block = ordered[start:start + step]
        if pool is None:
            encoded = encoder.encode(block, **options)
        else:
            encoded = encoder.encode(block, pool=pool, chunk_size=chunk_size, **options)
        vectors[order[start:start + len(block)]] = torch.nn.functional.normalize(encoded.float().cpu(), dim=-1).numpy()
        if done:
            done(len(block))
    return vectors


def _token_counts(encoder, inputs: list, role: Role, chunk: int = 512) -> np.ndarray:
    """Tokens per input as ``encoder.encode`` feeds them to the model: with the role's prompt, truncated."""
    prompt = encoder.prompts.get(role)
    counts = [encoder.preprocess(inputs[start:start + chunk], prompt=prompt)["attention_mask"].sum(dim=1).numpy()
              for start in range(0, len(inputs), chunk)]
    return np.concatenate(counts)


@lru_cache(maxsize=2)
def _encoder(model: ModelSpec):
    return load_model(model)
