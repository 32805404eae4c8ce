"""Encoding engine: resolution per machine, identity in the fingerprint, OpenVINO's vectors against torch's."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from hybridir import encoding
from hybridir.evaluation.run import EvaluationConfig, evaluated_model
from hybridir.models import engine as engine_module
from hybridir.models.engine import resolve_engine
from hybridir.models.spec import ModelSpec, load_model, resolve_model


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_is_openvino_for_bf16_on_a_cpu_and_torch_otherwise(cpu_only, monkeypatch):
    assert resolve_engine("auto", "bf16") == "openvino"
    assert resolve_engine("auto", "fp32") == "torch"  # the exact reference
    assert resolve_engine("openvino", "fp32") == "openvino" and resolve_engine("torch", "bf16") == "torch"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_engine("auto", "bf16") == "torch"


def test_bad_engines_fail_in_one_line_with_the_fix(cpu_only, monkeypatch):
    with pytest.raises(ValueError, match="unknown engine 'onnx'; choose one of: torch, openvino, auto"):
        resolve_engine("onnx", "fp32")
    with pytest.raises(ValueError, match="unknown engine 'onnx'"):
        EvaluationConfig(engine="onnx")
    with pytest.raises(ValueError, match="--engine openvino runs fp32 or bf16, not fp16; use --engine torch"):
        resolve_engine("openvino", "fp16")
    with pytest.raises(ValueError, match="ModelSpec engine must be torch or openvino"):
        ModelSpec("m", "offline", "q: ", "p: ", engine="auto")


def test_without_openvino_auto_warns_once_and_openvino_is_refused(cpu_only, monkeypatch):
    monkeypatch.setattr(engine_module, "openvino_installed", lambda: False)
    engine_module._warn_no_openvino.cache_clear()
    with pytest.warns(UserWarning, match=r"^hybridir: openvino is not installed, so --engine auto encodes with "
                                         r"torch \(slower on a CPU\); pip install openvino$"):
        assert resolve_engine("auto", "bf16") == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_engine("auto", "bf16")
    with pytest.raises(ImportError, match="--engine openvino needs the openvino package: pip install openvino"):
        resolve_engine("openvino", "bf16")


def test_the_engine_is_part_of_the_identity_and_torch_fp32_keeps_its_own(cpu_only):
    reference = resolve_model("offline")
    assert reference.engine == "torch" and resolve_model("offline", engine="auto").engine == "torch"
    prints = {replace(reference, precision=p, engine=e).fingerprint()
              for p in ("fp32", "bf16") for e in ("torch", "openvino")}
    assert len(prints) == 4
    assert resolve_model("offline", precision="fp32", engine="torch").fingerprint() == reference.fingerprint()


def test_an_evaluation_config_resolves_its_engine_with_its_precision(cpu_only, monkeypatch):
    monkeypatch.setattr("hybridir.models.precision.cpu_has_native_bf16", lambda: True)
    assert evaluated_model(EvaluationConfig()).engine == "openvino"  # auto, auto on a bf16 CPU
    assert evaluated_model(EvaluationConfig(precision="fp32")).engine == "torch"
    assert evaluated_model(EvaluationConfig(precision="bf16", engine="torch")).engine == "torch"


def test_openvino_matches_torch_fp32_on_real_xquad_texts_with_the_offline_model(cpu_only, xquad):
    """The real model on 96 real candidates and questions of three scripts: OpenVINO's fp32 is torch's fp32,
    its bf16 is closer to fp32 than torch's bf16 weights are."""
    texts = {role: [t for lang in ("en", "ar", "zh") for t in column[data_lang == lang][:16]]
             for role, column, data_lang in (
                 ("query", xquad.questions.text.to_numpy(), xquad.questions.language.to_numpy()),
                 ("passage", xquad.candidates.sentence.to_numpy(), xquad.candidates.language.to_numpy()))}
    vectors = {}
    for precision, engine in (("fp32", "torch"), ("fp32", "openvino"), ("bf16", "openvino"), ("bf16", "torch")):
        spec = resolve_model("offline", precision=precision, engine=engine)
        vectors[precision, engine] = {role: encoding.encode(spec, texts[role], role, use_cache=False,
                                                            show_progress=False) for role in texts}
    for role in texts:
        reference = vectors["fp32", "torch"][role]
        cosine = {key: (v[role] * reference).sum(axis=1) for key, v in vectors.items()}
        assert vectors["fp32", "openvino"][role].dtype == np.float32
        assert cosine["fp32", "openvino"].min() > 0.99999
        assert cosine["bf16", "openvino"].min() > 0.9999
        assert cosine["bf16", "openvino"].min() > cosine["bf16", "torch"].min()
        assert np.allclose(np.linalg.norm(vectors["bf16", "openvino"][role], axis=1), 1, atol=1e-5)


def test_openvino_passes_token_type_ids_of_a_bert_tokenizer(cpu_only, tmp_path, reference_tokenizer_file):
    """A BERT-style model whose tokenizer returns token_type_ids (LaBSE's case): all three inputs reach it."""
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    torch.manual_seed(0)
    config = BertConfig(vocab_size=250002, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=130, type_vocab_size=2)
    BertModel(config).save_pretrained(tmp_path)
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(reference_tokenizer_file), model_max_length=128,
                                        pad_token="<pad>", model_input_names=["input_ids", "token_type_ids",
                                                                              "attention_mask"])
    tokenizer.save_pretrained(tmp_path)
    texts = ["a short one", "and a somewhat longer second text to pad the first"]
    torch_model = load_model(resolve_model(str(tmp_path), engine="torch"))
    openvino_model = load_model(resolve_model(str(tmp_path), engine="openvino"))
    assert "token_type_ids" in openvino_model.preprocess(texts)
    assert openvino_model[0].model.inputs == ["input_ids", "attention_mask", "token_type_ids"]
    expected = torch_model.encode(texts, convert_to_numpy=True)
    assert np.allclose(openvino_model.encode(texts, convert_to_numpy=True), expected, atol=1e-5)
