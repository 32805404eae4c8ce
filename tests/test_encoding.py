"""Encoding cache: duplicates once, keyed on model + role + texts, resumable shards (tiny model: plumbing only)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hybridir import encoding
from hybridir.models.spec import resolve_model


@pytest.fixture()
def tiny_spec(tiny_xlmr_folder):
    return resolve_model("xlm-roberta-base", path=tiny_xlmr_folder)


@pytest.fixture()
def counted(monkeypatch):
    """Record every batch of texts the model actually encodes."""
    calls: list[list] = []
    real = encoding._encode_now

    def spy(model, texts, role, batch_size, progress):
        calls.append(list(texts))
        return real(model, texts, role, batch_size, progress)

    monkeypatch.setattr(encoding, "_encode_now", spy)
    return calls


def test_duplicates_are_encoded_once_and_rows_follow_the_input(tiny_spec, counted):
    texts = ["b", "a", "b", "c", "a"]
    vectors = encoding.encode(tiny_spec, texts, "passage", show_progress=False)
    assert counted == [["a", "b", "c"]]  # once each, in the canonical (sorted) order
    assert vectors.shape == (5, 32)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[1], vectors[4])
    assert not np.allclose(vectors[0], vectors[1])


def test_second_call_reads_the_cache(tiny_spec, counted):
    first = encoding.encode(tiny_spec, ["x", "y"], "query", show_progress=False)
    second = encoding.encode(tiny_spec, ["y", "x"], "query", show_progress=False)
    assert len(counted) == 1
    np.testing.assert_array_equal(first[::-1], second)


def test_roles_and_settings_have_separate_cache_entries(tiny_spec, counted):
    query = encoding.encode(tiny_spec, ["same text"], "query", show_progress=False)
    passage = encoding.encode(tiny_spec, ["same text"], "passage", show_progress=False)
    shorter = resolve_model("xlm-roberta-base", path=tiny_spec.source, max_seq_length=16)
    encoding.encode(shorter, ["same text"], "query", show_progress=False)
    assert len(counted) == 3
    assert not np.allclose(query, passage)  # different prompts reach the model


def test_pairs_are_encoded_as_one_input(tiny_spec):
    pair = encoding.encode(tiny_spec, [("A sentence.", "Its paragraph.")], "passage", use_cache=False,
                           show_progress=False)
    alone = encoding.encode(tiny_spec, ["A sentence."], "passage", use_cache=False, show_progress=False)
    assert pair.shape == (1, 32) and not np.allclose(pair, alone)


def test_interrupted_run_resumes_from_finished_shards(tiny_spec, counted, monkeypatch):
    monkeypatch.setattr(encoding, "SHARD_SIZE", 2)
    texts = [f"text {i}" for i in range(5)]
    real = encoding._encode_now
    failures = iter([False, True])

    def fail_on_second_shard(model, batch, role, batch_size, show_progress):
        if next(failures, False):
            raise KeyboardInterrupt
        return real(model, batch, role, batch_size, show_progress)

    monkeypatch.setattr(encoding, "_encode_now", fail_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        encoding.encode(tiny_spec, texts, "passage", show_progress=False)
    target = encoding.embedding_path(tiny_spec, texts, "passage")
    assert not target.exists() and len(list(target.with_suffix(".partial").glob("*.npy"))) == 1

    encoded: list[list[str]] = []
    monkeypatch.setattr(encoding, "_encode_now",
                        lambda m, b, r, s, p: (encoded.append(list(b)), real(m, b, r, s, p))[1])
    vectors = encoding.encode(tiny_spec, texts, "passage", show_progress=False)
    assert encoded == [["text 2", "text 3"], ["text 4"]]  # the first shard was not redone
    np.testing.assert_allclose(vectors, real(tiny_spec, texts, "passage", 8, False), atol=1e-5)


@pytest.mark.parametrize(("texts", "role", "error"), [
    ([], "query", "empty"),
    (["a"], "document", "role must be"),
    ([("a", "b", "c")], "passage", "pairs"),
])
def test_bad_inputs(tiny_spec, texts, role, error):
    with pytest.raises((ValueError, TypeError), match=error):
        encoding.encode(tiny_spec, texts, role, show_progress=False)


def test_encoding_time_is_recorded_beside_the_cache(tiny_spec):
    texts = ["one", "two", "two"]
    assert encoding.encoding_record(tiny_spec, texts, "query") is None
    encoding.encode(tiny_spec, texts, "query", show_progress=False)
    record = encoding.encoding_record(tiny_spec, texts, "query")
    assert record["texts"] == 2 and record["seconds"] > 0 and record["resumed_shards"] == 0
    assert record["batch_size"] == encoding.CPU_BATCH_SIZE  # the default, resolved for this CPU


def test_the_default_batch_is_the_cpu_one_without_a_gpu_and_larger_with_one(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert encoding.default_batch_size() == encoding.CPU_BATCH_SIZE == 16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert encoding.default_batch_size() == 128


def test_token_sorted_batches_give_sentence_transformers_embeddings(tiny_spec, xquad):
    """Batching by token count instead of sentence-transformers' character order changes only the padding, which
    attention masks out: the vectors of one encode() call over everything, to float rounding (real XQuAD-R texts,
    pairs too)."""
    texts = xquad.questions.text.tolist()[:150] + list(zip(xquad.candidates.sentence[:70], xquad.candidates.context[:70]))
    spec = replace(tiny_spec, max_seq_length=96)  # within the tiny model's 130 positions; paragraphs still truncate
    ours = encoding.encode(spec, texts, "passage", batch_size=16, use_cache=False, show_progress=False)
    unique, inverse = encoding._unique(texts)  # what encode() hands the model: each distinct text once
    theirs = encoding._encoder(spec).encode([t if isinstance(t, str) else list(t) for t in unique],
                                                 prompt_name="passage", batch_size=16, normalize_embeddings=True,
                                                 convert_to_numpy=True, show_progress_bar=False)
    np.testing.assert_allclose(ours, theirs[inverse], atol=2e-6)


def test_token_counts_are_what_the_model_reads(tiny_spec, xquad):
    """The batching key counts each text's tokens with the role's prompt and the truncation, one text at a time."""
    spec = replace(tiny_spec, max_seq_length=40)
    inputs = xquad.questions.text.tolist()[:20] + [list(pair) for pair in zip(xquad.candidates.sentence[:5],
                                                                             xquad.candidates.context[:5])]
    encoder = encoding._encoder(spec)
    counts = encoding._token_counts(encoder, inputs, "query", chunk=7)
    alone = [int(encoder.preprocess([text], prompt=encoder.prompts["query"])["attention_mask"].sum()) for text in inputs]
    assert counts.tolist() == alone and max(alone) == 40 and len(set(alone)) > 5


def test_the_progress_bar_says_what_it_encodes(tiny_spec, capsys):
    encoding.encode(tiny_spec, ["one", "two", "three"], "query", batch_size=2, use_cache=False,
                    label="xquad-r, 11 languages: questions")
    bar = capsys.readouterr().err
    assert "xquad-r, 11 languages: questions" in bar and "2/2" in bar and "Batches" not in bar
