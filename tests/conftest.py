"""Shared test setup: read the public data from ../shared/data and keep caches out of the user's home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hybridir import paths

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def data_environment(tmp_path_factory: pytest.TempPathFactory):
    """HYBRIDIR_DATA_DIR defaults to ../shared/data where it exists (CI's clean clone has ../shared beside
    it; elsewhere the loaders download); the cache, to a tmp dir."""
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get(paths.DATA_DIR_ENV) and SHARED_DATA.is_dir():
            mp.setenv(paths.DATA_DIR_ENV, str(SHARED_DATA))
        if not os.environ.get(paths.CACHE_DIR_ENV):
            mp.setenv(paths.CACHE_DIR_ENV, str(tmp_path_factory.mktemp("hybridir-cache")))
        yield


@pytest.fixture(scope="session")
def reference_tokenizer_file(data_environment) -> Path:
    """multilingual-e5-small's tokenizer.json from the data dir (it ships in ../shared/data only)."""
    local = paths.data_dir()
    path = local / "models" / "multilingual-e5-small" / "tokenizer.json" if local else None
    if path is None or not path.is_file():
        pytest.skip("needs models/multilingual-e5-small/tokenizer.json in HYBRIDIR_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def tiny_xlmr_folder(tmp_path_factory: pytest.TempPathFactory, reference_tokenizer_file: Path) -> Path:
    """A random 2-layer XLM-R in the hub's layout, with the real XLM-R tokenizer: plumbing tests only."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-xlm-roberta")
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=250002, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=130)
    XLMRobertaModel(config).save_pretrained(folder)
    XLMRobertaTokenizerFast(tokenizer_file=str(reference_tokenizer_file), model_max_length=128).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def xquad():
    from hybridir.data.lareqa import load_lareqa

    return load_lareqa("xquad-r")


@pytest.fixture(scope="session")
def mlqa():
    from hybridir.data.lareqa import load_lareqa

    return load_lareqa("mlqa-r")
