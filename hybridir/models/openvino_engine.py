"""The ``openvino`` engine (see :mod:`hybridir.models.engine`): a transformer converted by OpenVINO.

Imported only when that engine is chosen, so that nothing else needs openvino installed.
"""

from __future__ import annotations

import inspect
import warnings

import openvino
import torch
from sentence_transformers import SentenceTransformer

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_HINTS = {"fp32": "f32", "bf16": "bf16"}  # OpenVINO's names of the inference precision


def run_with_openvino(encoder: SentenceTransformer, precision: str) -> None:
    """Replace the transformer inside ``encoder`` (fp32 weights) by its OpenVINO conversion, in place."""
    from sentence_transformers.sentence_transformer.modules import Transformer

    transformer = encoder[0]
    if not isinstance(transformer, Transformer):
        raise ValueError(f"--engine openvino converts a Transformer module, but this model starts with "
                         f"{type(transformer).__name__}; use --engine torch")
    example = {key: value for key, value in encoder.preprocess(["passage: example"]).items() if key in INPUTS}
    transformer.model = OpenVINOTransformer(transformer.model.eval(), example, precision, torch.get_num_threads())
    # sentence-transformers passes the model the features its forward declares, read once at load.
    transformer._declared_forward_params = set(inspect.signature(transformer.model.forward).parameters)
    transformer.model_forward_params = transformer._declared_forward_params


class OpenVINOTransformer(torch.nn.Module):
    """A Hugging Face encoder compiled by OpenVINO, called as sentence-transformers calls the original:
    token ids in, ``last_hidden_state`` (float32) out; any batch shape, compiled once. ``options`` add
    OpenVINO compile properties."""

    def __init__(self, model: torch.nn.Module, example: dict[str, torch.Tensor], precision: str, threads: int,
                 options: dict | None = None) -> None:
        super().__init__()
        self.inputs = [name for name in INPUTS if name in example]
        # The tracer warns that two shape checks of transformers' mask code become constants; for an encoder
        # with an attention mask both take one branch whatever the batch (tests/test_models_engine.py).
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            converted = openvino.convert_model(
                _LastHiddenState(model), example_input={name: example[name] for name in self.inputs},
                input=[(name, [-1, -1], openvino.Type.i64) for name in self.inputs])
        self.config = model.config  # what sentence-transformers reads of a transformers model
        # One stream using every thread: OpenVINO's throughput mode (a stream per core) was slower on 2 cores.
        self.compiled = openvino.Core().compile_model(converted, "CPU", {
            "INFERENCE_PRECISION_HINT": _HINTS[precision], "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY"} | (options or {}))  # options: e.g. PERF_COUNT, for bench/profile_cpu.py
        self.register_buffer("anchor", torch.zeros(0), persistent=False)  # where sentence-transformers looks for
        # the device: this model runs on the CPU

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        outputs = self.compiled({name: given[name].numpy() for name in self.inputs})
        return {"last_hidden_state": torch.from_numpy(outputs[0])}


class _LastHiddenState(torch.nn.Module):
    """The module OpenVINO traces: token tensors in, the last hidden state out."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        given = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **given,
                          return_dict=True).last_hidden_state
