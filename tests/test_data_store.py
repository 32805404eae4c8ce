"""JSONL converted into the Arrow cache: the same slots, codes and batches as the in-memory path, a resumable
conversion, one-line errors with line numbers, and opening from the cache without converting again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybridir.data import store
from hybridir.data.parallel import lareqa_parallel, load_parallel_jsonl
from hybridir.data.store import convert_parallel_jsonl, open_converted
from hybridir.sampling.pairs import build_pair_dataset
from hybridir.sampling.samplers import LanguageBatchSampler
from hybridir.training.data import restrict_languages, without_negatives


def write_jsonl(path: Path, frame, shuffle_seed: int | None = 0) -> Path:
    """``frame``'s rows as JSONL lines, shuffled so that the conversion has to sort them."""
    records = frame.to_dict("records")
    if shuffle_seed is not None:
        records = [records[i] for i in np.random.default_rng(shuffle_seed).permutation(len(records))]
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    return path


@pytest.fixture(scope="module")
def mlqa(tmp_path_factory):
    """MLQA-R's real parallel pairs (answer sentences repeat across questions), as a shuffled JSONL with a
    negative per line (one text per id and language), converted in parts of 1,000 lines."""
    data = lareqa_parallel("mlqa-r")
    frame = data.pairs.copy()
    frame["negative"] = "not the answer to " + frame["id"] + " in " + frame["language"]
    folder = tmp_path_factory.mktemp("store")
    path = write_jsonl(folder / "mlqa.jsonl", frame)
    original = store.LINES_PER_PART
    store.LINES_PER_PART = 1000
    try:
        converted = convert_parallel_jsonl(path, cache=folder / "cache")
    finally:
        store.LINES_PER_PART = original
    return path, converted, load_parallel_jsonl(path)


def plans(dataset, table, **settings) -> list[np.ndarray]:
    sampler = LanguageBatchSampler(dataset, 16, table=table, seed=3, **settings)
    return [batch.pairs for batch in sampler.plan(0)]


def test_a_converted_file_gives_the_in_memory_slots_codes_and_batches(mlqa):
    path, converted, in_memory = mlqa
    assert converted.name == "mlqa" and converted.checksum == in_memory.checksum and converted.has_negatives
    assert converted.languages == in_memory.languages and len(converted.rows) == len(in_memory.pairs)
    arrow_dataset, arrow_table = build_pair_dataset([converted])
    frame_dataset, frame_table = build_pair_dataset([in_memory])
    for name in ("item_start", "language", "source_start", "item_ids", "text_codes"):
        assert np.array_equal(getattr(arrow_table, name), getattr(frame_table, name)), name
    assert arrow_dataset.column_names == ["query", "passage", "negative"] and arrow_table.text_codes.dtype == np.int32
    assert arrow_dataset[:50] == frame_dataset[:50] and arrow_dataset[-3:] == frame_dataset[-3:]
    assert arrow_dataset.cache_files, "the converted rows are memory-mapped from the cache, not loaded"
    for strategy in ("hybrid", "standard"):
        arrow_plan, frame_plan = plans(arrow_dataset, arrow_table, strategy=strategy), plans(frame_dataset, frame_table,
                                                                                            strategy=strategy)
        assert all(np.array_equal(a, b) for a, b in zip(arrow_plan, frame_plan)) and len(arrow_plan) == len(frame_plan)
    repeated = arrow_table.text_codes[:, 1]
    assert len(np.unique(repeated)) < len(repeated), "MLQA-R's shared answer sentences share a code"
    batch = arrow_dataset.__getitems__(next(iter(LanguageBatchSampler(arrow_dataset, 16, table=arrow_table))))
    assert len(batch) == 16 and len({row["passage"] for row in batch}) == 16


def test_language_restriction_and_dropped_negatives_match_the_in_memory_path(mlqa):
    _, converted, in_memory = mlqa
    for transform in (lambda d: restrict_languages(d, ["en", "de"]), without_negatives,
                      lambda d: restrict_languages(d, list(d.languages)),
                      lambda d: restrict_languages(without_negatives(d), ["hi", "en"])):
        arrow_dataset, arrow_table = build_pair_dataset([transform(converted)])
        frame_dataset, frame_table = build_pair_dataset([transform(in_memory)])
        assert arrow_table.languages == frame_table.languages and arrow_dataset.column_names == frame_dataset.column_names
        for name in ("item_start", "language", "item_ids", "text_codes"):
            assert np.array_equal(getattr(arrow_table, name), getattr(frame_table, name)), name
        assert arrow_dataset[-5:] == frame_dataset[-5:]
        assert transform(converted).checksum == transform(in_memory).checksum
    with pytest.raises(ValueError, match="has no pairs in th; its languages are ar, de, en, es, hi, vi, zh"):
        converted.restricted(["th", "en"])


def test_the_cache_is_opened_without_converting_again(mlqa, monkeypatch):
    path, converted, _ = mlqa
    monkeypatch.setattr(store, "_convert", lambda *args: pytest.fail("converted again"))
    again = convert_parallel_jsonl(path, cache=Path(converted.rows.cache_files[0]["filename"]).parents[1])
    assert np.array_equal(again.text_codes, converted.text_codes) and len(again.rows) == len(converted.rows)
    with pytest.raises(FileNotFoundError, match="holds no finished conversion"):
        open_converted(path.parent)


def test_an_interrupted_conversion_resumes_from_its_last_part(tmp_path, monkeypatch, mlqa):
    path, whole, _ = mlqa
    monkeypatch.setattr(store, "LINES_PER_PART", 1000)
    written = []
    original = store._write_part

    def stop_after_two(parts, rows, lines, progress, progress_file):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(lines[0])
        original(parts, rows, lines, progress, progress_file)

    monkeypatch.setattr(store, "_write_part", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        convert_parallel_jsonl(path, cache=tmp_path)
    folder = next(path for path in tmp_path.glob("mlqa-*") if path.is_dir())
    progress = json.loads((folder / "parts" / "progress.json").read_text())
    assert progress["parts"] == 2 and progress["line"] == 2000 and not (folder / "meta.json").exists()
    monkeypatch.setattr(store, "_write_part", lambda *args: (written.append(args[2][0]), original(*args)))
    resumed = convert_parallel_jsonl(path, cache=tmp_path)
    assert written[2] == 2001, "the resumed conversion starts after the parts already written"
    assert not (folder / "parts").exists()
    assert np.array_equal(resumed.text_codes, whole.text_codes) and resumed.rows[-4:] == whole.rows[-4:]


@pytest.mark.parametrize(("lines", "message"), [
    (['{"id": 1, "language": "en", "query": "q", "positive": "p"}'] * 2,
     r"line 2: \(id, language\) = \('1', 'en'\) already on line 1; keep one line per id and language"),
    (['{"id": 1, "language": "en", "query": "q", "positive": "p"}', '{"id": 2, "language": "en", "query": "q"}'],
     "line 2: missing field\\(s\\) 'positive'"),
    (['{"id": 1, "language": "en", "query": "q", "positive": "p"}',
      '{"id": 2, "language": "en", "query": "q", "positive": "p", "negative": "n"}'],
     "line 2: has 'negative' but line 1 does not"),
    ([], "the file is empty"),
    (['{"id": 1, "language": "en", "query": "q \\ud800", "positive": "p"}'],
     "line 1: 'query' holds an unpaired surrogate escape at character 2"),
])
def test_a_bad_file_is_a_one_line_error_and_leaves_no_cache(tmp_path, monkeypatch, lines, message):
    monkeypatch.setattr(store, "LINES_PER_PART", 1)  # the repeat is found across parts
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(ValueError, match=message) as error:
        convert_parallel_jsonl(path, cache=tmp_path / "cache")
    assert "\n" not in str(error.value)
    assert not [path for path in (tmp_path / "cache").glob("bad-*") if path.is_dir()], "no folder left behind"


def test_mmarco_is_read_once_into_the_cache_and_equals_the_in_memory_reading(tmp_path, monkeypatch):
    from mmarco_files import mmarco_copy

    from hybridir.data.parallel import load_mmarco
    from hybridir.data.store import convert_mmarco

    source = str(mmarco_copy(tmp_path / "mmarco", n_queries=30))
    converted = convert_mmarco(["en", "de"], 20, source=source, cache=tmp_path / "cache")
    in_memory = load_mmarco(["de", "en"], 20, source=source)
    assert converted.checksum == in_memory.checksum and converted.has_negatives and converted.n_items == 20
    (_, arrow_table), (_, frame_table) = build_pair_dataset([converted]), build_pair_dataset([in_memory])
    for name in ("item_start", "language", "item_ids", "text_codes"):
        assert np.array_equal(getattr(arrow_table, name), getattr(frame_table, name)), name
    def read_again(*args, **kwargs):
        raise RuntimeError("read mMARCO again")

    monkeypatch.setattr(store, "load_mmarco", read_again)
    assert convert_mmarco(["de", "en"], 20, source=source, cache=tmp_path / "cache").n_items == 20
    with pytest.raises(RuntimeError, match="read mMARCO again"):  # another request is another conversion
        convert_mmarco(["de", "en"], 10, source=source, cache=tmp_path / "cache")
    assert len([path for path in (tmp_path / "cache").glob("mmarco-*") if path.is_dir()]) == 1, \
        "a failed reading leaves no folder"


def test_gather_takes_rows_of_a_chunked_table_in_the_order_asked():
    from hybridir.data.store import gather
    import pyarrow as pa

    table = pa.Table.from_batches([pa.record_batch({"a": pa.array(np.arange(start, start + 7)),
                                                    "b": pa.array([f"t{i}" for i in range(start, start + 7)])})
                                   for start in range(0, 70, 7)])
    rng = np.random.default_rng(0)
    for n in (0, 1, 5, 70, 300):
        rows = rng.integers(0, 70, n)
        assert gather(table, rows).to_pylist() == table.take(pa.array(rows, pa.int64())).to_pylist()
