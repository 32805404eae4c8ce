"""Parallel QA converted once into a memory-mapped Arrow cache, for training data too large for pandas.

A user's JSONL of millions of lines (see :func:`hybridir.data.parallel.load_parallel_jsonl` for the format and
its checks, which are the same here) is converted by :func:`convert_parallel_jsonl` into a folder of the cache,
``pairs/<stem>-<sha256 of the file>/``:

- ``rows.arrow``: one row per (id, language), sorted by (id, language): ``id, language, query, positive[,
  negative]``, opened memory-mapped by ``datasets`` (texts stay on disk until a batch reads them);
- ``item_start.npy``, ``language.npy``, ``text_codes.npy``: the per-slot arrays the sampler reads (see
  :class:`hybridir.sampling.pairs.PairTable`);
- ``meta.json``: written last; a folder without it is an unfinished conversion.

The conversion reads the file in parts of :data:`LINES_PER_PART` lines, each written to ``parts/`` with the
byte offset reached, so an interrupted conversion resumes from its last part. Then it sorts, checks that no
(id, language) repeats, and writes the folder. Opening a converted file takes seconds whatever its size.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset
from filelock import FileLock

from hybridir import paths
from hybridir.data import sources
from hybridir.data.parallel import JSONL_FIELDS, parse_jsonl_line

LINES_PER_PART = 200_000
_BLOCK = 1 << 20  # rows sorted, hashed and written at a time: bounds the memory of a conversion
_FORMAT = 1
_META = "meta.json"


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
    # int32 (rows, text columns): equal codes for equal texts (from 64-bit hashes of the texts: a collision,
    # about 1 in 10^10 for 10M texts, only keeps two different texts out of one batch)
    text_codes: np.ndarray

    @property
    def has_negatives(self) -> bool:
        return "negative" in self.rows.column_names

    @property
    def n_items(self) -> int:
        return len(self.item_start) - 1

    @property
    def item_ids(self) -> np.ndarray:
        return self.rows.data.column("id").take(pa.array(self.item_start[:-1])).to_numpy(zero_copy_only=False)

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
        if kept_languages == self.languages:
            return self
        wanted = np.zeros(len(self.languages), dtype=bool)
        wanted[[self.languages.index(lang) for lang in kept_languages]] = True
        kept = np.flatnonzero(wanted[self.language])
        counts = np.bincount(np.repeat(np.arange(self.n_items), np.diff(self.item_start))[kept],
                             minlength=self.n_items)
        counts = counts[counts > 0]
        folder = Path(self.rows.cache_files[0]["filename"]).parent
        target = folder / f"rows-{'+'.join(kept_languages)}-{len(self.rows.column_names)}.arrow"
        if not target.is_file():
            _write_rows(self.rows.data.table, kept, target)
        remap = np.cumsum(wanted) - 1  # old language code -> new
        return replace(self, rows=_open_rows(target, self.rows.column_names),
                       item_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                       language=remap[self.language[kept]].astype(np.uint8), languages=kept_languages,
                       text_codes=_renumbered(self.text_codes[kept]), checksum=f"{self.checksum}:languages={'+'.join(kept_languages)}")


def convert_parallel_jsonl(path: str | os.PathLike[str], cache: Path | None = None) -> ArrowQA:
    """The JSONL file as an :class:`ArrowQA`, converted into the cache on first use (resumably) and opened from
    there afterwards; ``cache`` defaults to ``<hybridir cache>/pairs``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; pass a JSONL file of id, language, query, positive[, "
                                "negative]")
    checksum = sources.checksum([path])
    folder = (cache or paths.cache_dir() / "pairs") / f"{path.stem}-{checksum[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):  # DDP ranks, or two runs, converting one file: one converts
        if not (folder / _META).is_file():
            try:
                _convert(path, folder, checksum)
            except ValueError:  # the file itself is wrong: a fixed file has another checksum and folder
                shutil.rmtree(folder, ignore_errors=True)
                raise
    return open_converted(folder)


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
                has = "has" if len(row) == 5 else "has no"
                first = "does not" if len(row) == 5 else "does"
                raise ValueError(f"{path}: line {number}: {has} 'negative' but line 1 {first}; give a negative on "
                                 "every line or on none")
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
        raise ValueError(f"{path}: the file is empty; write one JSON object per line, e.g. "
                         '{"id": "q1", "language": "de", "query": "…", "positive": "…"}')
    table = pa.concat_tables(pa.ipc.open_file(pa.memory_map(str(parts / f"part-{n:05d}.arrow"))).read_all()
                             for n in range(progress["parts"]))
    order = pc.sort_indices(table, sort_keys=[("id", "ascending"), ("language", "ascending")])
    ids = table.column("id").take(order)
    languages = table.column("language").take(order)
    same_id = pc.equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
    repeated = np.flatnonzero(same_id & pc.equal(languages[1:], languages[:-1]).to_numpy(zero_copy_only=False))
    if len(repeated):
        key = (ids[int(repeated[0])].as_py(), languages[int(repeated[0])].as_py())
        first, second = sorted(table.column("line").take(order[int(repeated[0]):int(repeated[0]) + 2]).to_pylist())
        raise ValueError(f"{path}: line {second}: (id, language) = {key} already on line {first}; keep one line per id and language")
    fields = list(JSONL_FIELDS[:progress["fields"]])
    _write_rows(table.select(fields), order.to_numpy(), folder / "rows.arrow")
    language_list = sorted(pc.unique(languages).to_pylist())
    starts = np.flatnonzero(np.concatenate([[True], ~same_id]))
    np.save(folder / "item_start.npy", np.append(starts, len(table)).astype(np.int64))
    np.save(folder / "language.npy", pc.index_in(languages, value_set=pa.array(language_list)).to_numpy()
            .astype(np.uint8))
    np.save(folder / "text_codes.npy", _text_codes(table.select(fields[2:]), order.to_numpy()))
    meta = {"format": _FORMAT, "name": path.stem, "source": str(path.resolve()), "checksum": checksum,
            "fields": len(fields), "languages": language_list, "rows": len(table), "items": len(starts)}
    _write_atomically(folder / _META, json.dumps(meta, indent=1))
    shutil.rmtree(parts)


def _write_part(parts: Path, rows: list[tuple[str, ...]], lines: list[int], progress: dict,
                progress_file: Path) -> None:
    """One part of parsed lines, then the progress that points past it (a crash between the two rewrites it)."""
    columns = list(zip(*rows))
    table = pa.table({**{name: pa.array(values, pa.string()) for name, values in zip(JSONL_FIELDS, columns)},
                      "line": pa.array(lines, pa.int64())})
    target = parts / f"part-{progress['parts']:05d}.arrow"
    with pa.OSFile(str(target) + ".tmp", "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(str(target) + ".tmp", target)
    progress["parts"] += 1
    _write_atomically(progress_file, json.dumps(progress))


def _write_rows(table: pa.Table, order: np.ndarray, target: Path) -> None:
    """``table``'s rows in ``order`` as an Arrow stream file (the format ``datasets`` memory-maps), a block at a
    time and atomically."""
    schema = pa.schema([(name, pa.large_string()) for name in table.column_names])  # as sampling.pairs' in-memory
    tmp = str(target) + ".tmp"
    with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for start in range(0, len(order), _BLOCK):
            block = table.take(pa.array(order[start:start + _BLOCK]))
            writer.write_table(block.cast(schema), max_chunksize=10_000)
    os.replace(tmp, target)


def _open_rows(path: Path, columns: list[str]) -> Dataset:
    rows = Dataset.from_file(str(path))
    if rows.column_names != columns:
        raise ValueError(f"{path} has columns {rows.column_names}, expected {columns}; delete its folder and "
                         "convert again")
    return rows


def _text_codes(texts: pa.Table, order: np.ndarray) -> np.ndarray:
    """Dense int32 codes of the texts in ``order``, one column per text column, equal for equal strings: 64-bit
    hashes taken a block at a time (pyarrow's dictionary encoding would hold every distinct text in memory)."""
    hashes = np.empty((len(order), texts.num_columns), dtype=np.uint64)
    for start in range(0, len(order), _BLOCK):
        block = texts.take(pa.array(order[start:start + _BLOCK]))
        for column in range(texts.num_columns):
            values = block.column(column).to_numpy(zero_copy_only=False)
            hashes[start:start + len(values), column] = pd.util.hash_array(values, categorize=False)
    codes, _ = pd.factorize(hashes.ravel())
    return codes.astype(np.int32).reshape(hashes.shape)


def _renumbered(codes: np.ndarray) -> np.ndarray:
    """Codes numbered again from 0 in order of first appearance, as a conversion numbers them."""
    return pd.factorize(codes.ravel())[0].astype(np.int32).reshape(codes.shape)


def _write_atomically(target: Path, text: str) -> None:
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, target)
