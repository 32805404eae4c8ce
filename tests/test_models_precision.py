"""Compute precision: resolution per machine, identity in the fingerprint, float32 embeddings, CLI and provenance."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from hybridir import encoding
from hybridir.cli import main
from hybridir.models import precision as precision_module
from hybridir.models.precision import cpu_has_native_bf16, resolve_precision
from hybridir.models.spec import ModelSpec, resolve_model

RESULTS = Path(__file__).resolve().parents[1] / "results" / "zero-shot"


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    amx, avx512, plain = tmp_path / "amx", tmp_path / "avx512", tmp_path / "plain"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile amx_int8\n")
    avx512.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")  # bf16 dot products (AMD Zen 4)
    plain.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n")  # bf16 only emulated
    assert cpu_has_native_bf16(amx) and cpu_has_native_bf16(avx512) and not cpu_has_native_bf16(plain)
    assert not cpu_has_native_bf16(tmp_path / "missing")


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_is_bf16_exactly_where_the_cpu_has_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: native)
    assert resolve_precision("auto") == expected
    assert resolve_precision("fp32") == "fp32"


def test_forcing_emulated_bf16_warns_once_with_the_measured_slowdown(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: False)
    precision_module._warn_emulated_bf16.cache_clear()
    with pytest.warns(UserWarning, match=r"^hybridir: bf16 is emulated on this CPU \(no AMX or AVX512-BF16 in its "
                                         r"flags\): a 256² matmul took \d+x the fp32 time; use --precision auto"):
        assert resolve_precision("bf16") == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process
        resolve_precision("bf16")
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: True)
    precision_module._warn_emulated_bf16.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16") == "bf16"


def test_bad_precisions_fail_with_the_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="fp16 needs a GPU.*use --precision bf16 or fp32"):
        resolve_precision("fp16")
    with pytest.raises(ValueError, match="unknown precision 'int8'; choose one of: fp32, bf16, fp16, auto"):
        resolve_precision("int8")
    with pytest.raises(ValueError, match="resolve 'auto' with resolve_precision first"):
        ModelSpec("m", "offline", "q", "p", precision="auto")


def test_fp32_keeps_the_committed_fingerprint_and_other_precisions_get_their_own():
    """fp32 identity is unchanged by the new field (the committed zero-shot provenance still matches it);
    a bf16 spec never shares an embedding cache with it."""
    committed = json.loads((RESULTS / "xquad-r" / "provenance.json").read_text())["model_fingerprint"]
    fp32, bf16 = resolve_model("offline"), resolve_model("offline", precision="bf16")
    assert fp32.fingerprint() == committed
    assert bf16.fingerprint() != committed


def test_bf16_embeddings_are_float32_close_to_fp32_and_cached_apart(tiny_xlmr_folder):
    fp32 = resolve_model("xlm-roberta-base", path=tiny_xlmr_folder)
    bf16 = resolve_model("xlm-roberta-base", path=tiny_xlmr_folder, precision="bf16")
    texts = ["a short question", "eine kurze Frage", "une question courte"]
    exact = encoding.encode(fp32, texts, "query", show_progress=False)
    fast = encoding.encode(bf16, texts, "query", show_progress=False)
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    assert not np.array_equal(fast, exact)  # it did compute in bf16
    cosine = (fast * exact).sum(axis=1)
    assert cosine.min() > 0.99
    assert encoding.embedding_path(fp32, sorted(texts), "query") != encoding.embedding_path(bf16, sorted(texts), "query")


def test_cli_evaluate_takes_precision_into_the_provenance(tmp_path, tiny_xlmr_folder):
    output = tmp_path / "run"
    assert main(["evaluate", "--model", "xlm-roberta-base", "--model-path", str(tiny_xlmr_folder), "--dataset",
                 "xquad-r", "--languages", "en", "de", "--max-question-ids", "10", "--precision", "bf16",
                 "--max-length", "128", "--output", str(output)]) == 0  # within the tiny model's 130 positions
    provenance = json.loads((output / "provenance.json").read_text())
    assert provenance["config"]["precision"] == "bf16"
    assert provenance["config"]["model_spec"]["precision"] == "bf16"
    spec = provenance["config"]["model_spec"]
    assert spec["engine"] == resolve_model("xlm-roberta-base", path=tiny_xlmr_folder, precision="bf16",
                                           engine="auto").engine  # openvino on a CPU-only machine
    assert provenance["model_fingerprint"] == resolve_model("xlm-roberta-base", path=tiny_xlmr_folder,
                                                            precision="bf16", engine=spec["engine"],
                                                            max_seq_length=128).fingerprint()
    assert provenance["model_fingerprint"] != resolve_model("xlm-roberta-base", path=tiny_xlmr_folder).fingerprint()
