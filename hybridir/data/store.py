"""Parallel QA converted once into a memory-mapped Arrow cache, for training data too large for pandas.

A user's JSONL of millions of lines (see :func:`hybridir.data.parallel.load_parallel_jsonl` for the format and
its checks, which are the same here) is converted by :func:`convert_parallel_jsonl` into a folder of the cache,
``pairs/<stem>-<sha256 of the file>/``:

- ``rows.arrow``: one row per (id, language), sorted by (id, language): ``id, language, query, positive[,
  negative]``, opened memory-mapped by ``datasets`` (texts stay on disk until a batch reads them);
- ``item_start.npy``, ``language.npy``, ``text_codes.npy``: the per-slot arrays the sampler reads (see
  :class:`hybridir.sampling.pairs.PairTable`);
- ``meta.json``: written last; a folder without it is an unfinished conversion.

:func:`convert_mmarco` keeps mMARCO's items in the same form, read once from the hub or a local copy.

The conversion reads the file in parts of :data:`LINES_PER_PART` lines, each written to ``parts/`` with the
byte offset reached, so an interrupted conversion resumes from its last part. Then it sorts, checks that no
(id, language) repeats, and writes the folder. Opening a converted file costs one read of it (its checksum,
kept per process) and no parsing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset
from filelock import FileLock

from hybridir import paths
from hybridir.data import sources
from hybridir.data.parallel import (JSONL_FIELDS, MMARCO_LANGUAGES, JsonlError, load_mmarco, negative_mismatch,
                                    parse_jsonl_line)
from hybridir.provenance import write_json

LINES_PER_PART = 200_000
_BLOCK = 1 << 18  # rows gathered, hashed and written at a time: bounds the memory of a conversion
_FORMAT = 1
_MMARCO_READER = 1  # bump when load_mmarco's choice of items changes: its conversions are keyed on the request
_META = "meta.json"
_HASH_KEYS = ("hybridir-texts-1", "hybridir-texts-2")  # pandas' hash_array takes 16-byte keys


@dataclass(frozen=True, eq=False)
class ArrowQA:
    """Parallel QA held in Arrow: one row per (id, language) slot, sorted by (id, language), with the sampler's
    arrays. The same interface as :class:`~hybridir.data.parallel.ParallelQA` where a source is read (``name``,
    ``checksum``, ``languages``, ``has_negatives``), with the texts memory-mapped instead of in a DataFrame."""

    name: str
    checksum: str
    rows: Dataset  # id, language, query, positive[, negative]
    item_start: np.ndarray  # int64: item k's rows are item_start[k]:item_start[k + 1]
    language: np.ndarray  # uint8 per row, a code into ``languages``
    languages: tuple[str, ...]
    # int32 (rows, text columns): equal codes for equal texts, from two independent 64-bit hashes of each text
    # (a 128-bit key: two different texts sharing one is practically impossible)
    text_codes: np.ndarray

    @property
    def has_negatives(self) -> bool:
        return "negative" in self.rows.column_names

    @property
    def n_items(self) -> int:
        return len(self.item_start) - 1

    @property
    def item_ids(self) -> np.ndarray:
        return gather(self.rows.data.table.select(["id"]), self.item_start[:-1]).column("id").to_numpy(
            zero_copy_only=False)

    def without_negatives(self) -> ArrowQA:
        if not self.has_negatives:
            return self
        return replace(self, rows=self.rows.remove_columns("negative"), text_codes=_renumbered(self.text_codes[:, :2]),
                       checksum=f"{self.checksum}:no-negatives")

    def restricted(self, languages: Sequence[str]) -> ArrowQA:
        """Only ``languages`` (their rows written once beside the converted file); an item left with none goes."""
        missing = sorted(set(languages) - set(self.languages))
        if missing:
            raise ValueError(f"training source {self.name!r} has no pairs in {', '.join(missing)}; its languages are "
                             f"{', '.join(self.languages)}")
        kept_languages = tuple(sorted(languages))
        checksum = f"{self.checksum}:languages={'+'.join(kept_languages)}"  # as restrict_languages' for a DataFrame
        if kept_languages == self.languages:
            return replace(self, checksum=checksum)
        wanted = np.zeros(len(self.languages), dtype=bool)
        wanted[[self.languages.index(lang) for lang in kept_languages]] = True
        kept = np.flatnonzero(wanted[self.language])
        counts = np.bincount(np.repeat(np.arange(self.n_items), np.diff(self.item_start))[kept],
                             minlength=self.n_items)
        counts = counts[counts > 0]
        folder = Path(self.rows.cache_files[0]["filename"]).parent
        target = folder / f"rows-{'+'.join(kept_languages)}-{len(self.rows.column_names)}.arrow"
        with FileLock(str(target) + ".lock"):  # DDP ranks restricting one source: one writes
            if not target.is_file():
                _write_rows(self.rows.data.table, kept, target)
        remap = np.cumsum(wanted) - 1  # old language code -> new
        return replace(self, rows=_open_rows(target, self.rows.column_names),
                       item_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                       language=remap[self.language[kept]].astype(np.uint8), languages=kept_languages,
                       text_codes=_renumbered(self.text_codes[kept]), checksum=checksum)


def convert_parallel_jsonl(path: str | os.PathLike[str], cache: Path | None = None) -> ArrowQA:
    """The JSONL file as an :class:`ArrowQA`, converted into the cache on first use (resumably) and opened from
    there afterwards; ``cache`` defaults to ``<hybridir cache>/pairs``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; pass a JSONL file of id, language, query, positive[, "
                                "negative]")
    stat = path.stat()
    checksum = _file_checksum(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    folder = (cache or paths.cache_dir() / "pairs") / f"{path.stem}-{checksum[:16]}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):  # DDP ranks, or two runs, converting one file: one converts
        if not (folder / _META).is_file():
            folder.mkdir(exist_ok=True)
            try:
                _convert(path, folder, checksum)
            except JsonlError:  # the file itself is wrong: a fixed file has another checksum and folder
                shutil.rmtree(folder, ignore_errors=True)
                raise
        shutil.rmtree(folder / "parts", ignore_errors=True)  # left if a conversion stopped after its meta.json
    return open_converted(folder)


@lru_cache(maxsize=32)
def _file_checksum(path: str, _size: int, _modified: int) -> str:
    """sha256 of a file, once per process while its size and modification time stay: every stage of an
    experiment keys its run on its training data's checksum."""
    return sources.checksum([path])


def open_converted(folder: Path) -> ArrowQA:
    """A converted folder (see the module docstring) as an :class:`ArrowQA`."""
    meta_file = folder / _META
    if not meta_file.is_file():
        raise FileNotFoundError(f"{folder} holds no finished conversion ({_META} is missing); convert the JSONL "
                                "again with convert_parallel_jsonl")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{folder} was converted by another hybridir version (format {meta.get('format')}); "
                         "delete the folder and convert again")
    return ArrowQA(name=meta["name"], checksum=meta["checksum"],
                   rows=_open_rows(folder / "rows.arrow", list(JSONL_FIELDS[:meta["fields"]])),
                   item_start=np.load(folder / "item_start.npy"), language=np.load(folder / "language.npy"),
                   languages=tuple(meta["languages"]), text_codes=np.load(folder / "text_codes.npy"))


def _convert(path: Path, folder: Path, checksum: str) -> None:
    parts = folder / "parts"
    parts.mkdir(exist_ok=True)
    progress_file = parts / "progress.json"
    progress = (json.loads(progress_file.read_text()) if progress_file.is_file()
                else {"parts": 0, "offset": 0, "line": 0, "fields": None})
    from tqdm.auto import tqdm

    size = path.stat().st_size
    with open(path, "rb") as handle, tqdm(total=size, initial=progress["offset"], unit="B", unit_scale=True,
                                          desc=f"converting {path.name}") as bar:
        handle.seek(progress["offset"])
        rows: list[tuple[str, ...]] = []
        lines: list[int] = []
        for raw in handle:
            progress["line"] += 1
            number = progress["line"]
            row = parse_jsonl_line(raw, number, f"{path}: line {number}")
            if progress["fields"] is None:
                progress["fields"] = len(row)
            elif len(row) != progress["fields"]:
                raise negative_mismatch(f"{path}: line {number}", has_negative=len(row) == len(JSONL_FIELDS))
            rows.append(row)
            lines.append(number)
            progress["offset"] += len(raw)
            if len(rows) == LINES_PER_PART:
                _write_part(parts, rows, lines, progress, progress_file)
                bar.update(progress["offset"] - bar.n)
                rows, lines = [], []
        if rows:
            _write_part(parts, rows, lines, progress, progress_file)
            bar.update(progress["offset"] - bar.n)
    if progress["line"] == 0:
        raise JsonlError(f"{path}: the file is empty; write one JSON object per line, e.g. "
                         '{"id": "q1", "language": "de", "query": "…", "positive": "…"}')
    table = pa.concat_tables(pa.ipc.open_file(pa.memory_map(str(parts / f"part-{n:05d}.arrow"))).read_all()
                             for n in range(progress["parts"]))
    _finish(table, folder, {"name": path.stem, "source": str(path.resolve()), "checksum": checksum},
            where=f"{path}: line ")
    shutil.rmtree(parts)


def convert_mmarco(languages: Sequence[str], max_queries: int | None = None, source: str = "unicamp-dl/mmarco",
                   cache: Path | None = None) -> ArrowQA:
    """:func:`~hybridir.data.parallel.load_mmarco`'s items as an :class:`ArrowQA`, read once into the cache:
    a run's stages, its ranks and later runs open it in seconds instead of scanning gigabytes of collections.

    The cache key is the request (source, languages, items) and, for a local folder, its files' sizes and
    modification times; the content checksum is the one ``load_mmarco`` computes. A hub dataset is read once
    per key: delete ``<cache>/pairs/mmarco-*`` to read a changed one again. The reading is not resumable (an
    interrupted one starts over) and holds the chosen items' texts in memory once, as ``load_mmarco`` does."""
    key = {"reader": _MMARCO_READER, "source": source, "languages": sorted(languages), "max_queries": max_queries}
    if Path(source).is_dir():  # the files load_mmarco reads for these languages, as they are now
        root = Path(source).resolve()
        files = ["data/triples.train.ids.small.tsv"] + [
            f"data/google/{folder}/{MMARCO_LANGUAGES[lang]}_{suffix}" for lang in sorted(languages)
            for folder, suffix in (("queries/train", "queries.train.tsv"), ("collections", "collection.tsv"))]
        key["source"] = str(root)
        key["files"] = [(name, (root / name).stat().st_size, (root / name).stat().st_mtime_ns)
                        for name in files if (root / name).is_file()]
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    folder = (cache or paths.cache_dir() / "pairs") / f"mmarco-{digest}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / _META).is_file():
            folder.mkdir(exist_ok=True)
            try:
                data = load_mmarco(languages, max_queries, source=source)
                table = pa.Table.from_pandas(data.pairs, preserve_index=False).append_column(
                    "line", pa.array(np.arange(1, len(data.pairs) + 1)))
                _finish(table, folder, {"name": data.name, "source": source, "checksum": data.checksum},
                        where="mMARCO row ")
            except BaseException:  # nothing to resume from: the next call reads mMARCO again
                shutil.rmtree(folder, ignore_errors=True)
                raise
    return open_converted(folder)


def _finish(table: pa.Table, folder: Path, about: dict, where: str) -> None:
    """Sort ``table`` (the JSONL fields and each row's ``line``) by (id, language), check that no (id, language)
    repeats, and write the folder's rows, arrays and, last, its meta.json."""
    order = pc.sort_indices(table, sort_keys=[("id", "ascending"), ("language", "ascending")]).to_numpy()
    keys = gather(table.select(["id", "language"]), order)
    ids, languages = keys.column("id"), keys.column("language")
    same_id = pc.equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
    repeated = np.flatnonzero(same_id & pc.equal(languages[1:], languages[:-1]).to_numpy(zero_copy_only=False))
    if len(repeated):
        key = (ids[int(repeated[0])].as_py(), languages[int(repeated[0])].as_py())
        first, second = sorted(gather(table.select(["line"]), order[int(repeated[0]):int(repeated[0]) + 2])
                               .column("line").to_pylist())
        raise JsonlError(f"{where}{second}: (id, language) = {key} already on line {first}; keep one line per id "
                         "and language")
    fields = [name for name in JSONL_FIELDS if name in table.column_names]
    _write_rows(table.select(fields), order, folder / "rows.arrow")
    language_list = sorted(pc.unique(languages).to_pylist())
    starts = np.flatnonzero(np.concatenate([[True], ~same_id]))
    np.save(folder / "item_start.npy", np.append(starts, len(table)).astype(np.int64))
    np.save(folder / "language.npy", pc.index_in(languages, value_set=pa.array(language_list)).to_numpy()
            .astype(np.uint8))
    np.save(folder / "text_codes.npy", _text_codes(folder / "rows.arrow", fields[2:], len(table)))
    meta = {"format": _FORMAT, **about, "fields": len(fields), "languages": language_list, "rows": len(table),
            "items": len(starts)}
    write_json(folder / _META, meta)


def _write_part(parts: Path, rows: list[tuple[str, ...]], lines: list[int], progress: dict,
                progress_file: Path) -> None:
    """One part of parsed lines, then the progress that points past it (a crash between the two rewrites it)."""
    columns = list(zip(*rows))
    table = pa.table({**{name: pa.array(values, pa.large_string()) for name, values in zip(JSONL_FIELDS, columns)},
                      "line": pa.array(lines, pa.int64())})
    target = parts / f"part-{progress['parts']:05d}.arrow"
    with pa.OSFile(str(target) + ".tmp", "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(str(target) + ".tmp", target)
    progress["parts"] += 1
    write_json(progress_file, progress)


def _write_rows(table: pa.Table, order: np.ndarray, target: Path) -> None:
    """``table``'s rows in ``order`` as an Arrow stream file (the format ``datasets`` memory-maps), a block at a
    time and atomically."""
    schema = pa.schema([(name, pa.large_string()) for name in table.column_names])  # as sampling.pairs' in-memory
    tmp = str(target) + ".tmp"
    with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for start in range(0, len(order), _BLOCK):
            block = gather(table, order[start:start + _BLOCK])
            writer.write_table(block.cast(schema), max_chunksize=10_000)
    os.replace(tmp, target)


def gather(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """``table``'s ``rows``, in that order, taken chunk by chunk: pyarrow's ``Table.take`` first concatenates
    every chunk, which reads a whole memory-mapped file into memory for 16 rows."""
    batches = table.to_batches()
    offsets = np.cumsum([0] + [batch.num_rows for batch in batches])
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= table.num_rows):
        raise IndexError(f"rows {rows.min()}..{rows.max()} asked of a table of {table.num_rows} rows")
    which = np.searchsorted(offsets, rows, side="right") - 1
    by_batch = np.argsort(which, kind="stable")
    grouped = rows[by_batch]
    bounds = np.searchsorted(which[by_batch], np.arange(len(batches) + 1))
    pieces = [batch.take(pa.array(grouped[bounds[b]:bounds[b + 1]] - offsets[b]))
              for b, batch in enumerate(batches) if bounds[b + 1] > bounds[b]]
    taken = pa.Table.from_batches(pieces, schema=table.schema).combine_chunks()
    return taken.take(pa.array(np.argsort(by_batch)))  # one chunk now: back to the order asked for


def _open_rows(path: Path, columns: list[str]) -> Dataset:
    rows = Dataset.from_file(str(path))
    if rows.column_names != columns:
        raise ValueError(f"{path} has columns {rows.column_names}, expected {columns}; delete its folder and "
                         "convert again")
    return rows


def _text_codes(rows_file: Path, columns: list[str], n_rows: int) -> np.ndarray:
    """Dense int32 codes of the text ``columns`` of a written rows file, row by row, equal for equal strings: each
    text's two 64-bit hashes (independent keys) are factorized apart and their codes together. The file is read
    in order, a record batch at a time (pyarrow's dictionary encoding would hold every distinct text in memory)."""
    hashes = np.empty((len(_HASH_KEYS), n_rows, len(columns)), dtype=np.uint64)
    start = 0
    for batch in pa.ipc.open_stream(pa.memory_map(str(rows_file))):
        for column, name in enumerate(columns):
            values = batch.column(name).to_numpy(zero_copy_only=False)
            for k, key in enumerate(_HASH_KEYS):
                hashes[k, start:start + batch.num_rows, column] = pd.util.hash_array(values, hash_key=key,
                                                                                      categorize=False)
        start += batch.num_rows
    first, second = (pd.factorize(h.ravel())[0].astype(np.int64) for h in hashes)
    codes, _ = pd.factorize(first * (int(second.max(initial=0)) + 1) + second)
    return codes.astype(np.int32).reshape(hashes.shape[1:])


def _renumbered(codes: np.ndarray) -> np.ndarray:
    """Codes numbered again from 0 in order of first appearance, as a conversion numbers them."""
    return pd.factorize(codes.ravel())[0].astype(np.int32).reshape(codes.shape)
