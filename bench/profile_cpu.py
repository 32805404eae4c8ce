"""Profile: where the time of an encoding batch and of a training step goes on this CPU (issue 16).

    HYBRIDIR_DATA_DIR=../shared/data .venv/bin/python bench/profile_cpu.py \
        | tee results/bench/profile_cpu.<machine>.txt

The offline model (multilingual-e5-small), 2 threads, in one run:

1. **Padding.** Over all XQuAD-R candidates and questions, batched as sentence-transformers' ``encode`` does
   (sorted by length, batch 64): the share of computed token positions that are padding.
2. **Encoding batch.** One batch of 64 XQuAD-R candidate sentences of median length, fp32 and bf16 weights:
   tokenisation, then the forward pass under torch.profiler, its self time split by operator kind. Then the
   openvino engine in bf16 on that batch, on 64 median-length questions and on 64 long candidates (99th
   length percentile), with OpenVINO's own per-node timings summed by node type.
3. **Training step.** One MNRL step (batch 32, max length 128, frozen word embeddings, fp32 and bf16
   autocast over fp32 weights): tokenisation, forward, backward and AdamW, each phase's wall time, and the
   profiled self time by operator kind.

Operator kinds: matmul (linear, addmm, mm, bmm), attention (scaled-dot-product kernels, softmax), norm
(layer norm), activation (GELU), embedding, and other (copies, adds, views, the rest). "Unattributed" is a
phase's wall time minus its operators' self time: Python and framework overhead. Ends with a summary line.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict

import numpy as np
import torch
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from torch.profiler import ProfilerActivity, profile

from hybridir.data.lareqa import load_lareqa
from hybridir.data.parallel import lareqa_parallel
from hybridir.models.precision import torch_dtype
from hybridir.models.spec import load_model, resolve_model
from hybridir.provenance import hardware, versions

KINDS = (("matmul", ("addmm", "aten::mm", "bmm", "linear", "matmul", "mkldnn_rnn", "onednn")),
         ("attention", ("scaled_dot_product", "softmax", "_efficient_attention", "flash_attention")),
         ("norm", ("layer_norm",)), ("activation", ("gelu",)), ("embedding", ("embedding",)))


def kind_of(name: str) -> str:
    return next((kind for kind, keys in KINDS if any(key in name for key in keys)), "other")


def self_time_by_kind(prof) -> dict[str, float]:
    """Seconds of self CPU time per operator kind (the profile's leaf work, nothing counted twice)."""
    totals: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key.startswith(("aten::", "mkldnn", "onednn")):
            totals[kind_of(event.key)] += event.self_cpu_time_total / 1e6
    return dict(totals)


def show(label: str, wall: float, prof) -> None:
    kinds = self_time_by_kind(prof)
    attributed = sum(kinds.values())
    parts = ", ".join(f"{kind} {seconds / wall:.0%}" for kind, seconds in sorted(kinds.items(), key=lambda kv: -kv[1]))
    print(f"  {label}: {wall * 1e3:.0f} ms; {parts}, unattributed {max(wall - attributed, 0) / wall:.0%}")
    others = sorted((event for event in prof.key_averages()
                     if event.key.startswith("aten::") and kind_of(event.key) == "other"),
                    key=lambda event: -event.self_cpu_time_total)[:5]
    print("    largest 'other': " + ", ".join(f"{event.key} {event.self_cpu_time_total / 1e6 / wall:.0%}"
                                               for event in others))


def padding_share(model, texts: list[str], batch_size: int = 64) -> float:
    lengths = np.array([len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=512)["input_ids"]])
    lengths = np.sort(lengths)[::-1]  # encode() sorts by token count, longest first
    computed = sum(chunk.max() * len(chunk) for chunk in np.array_split(lengths, range(batch_size, len(lengths),
                                                                                          batch_size)))
    return 1 - lengths.sum() / computed


def profile_encoding(texts: list[str], precision: str) -> None:
    model = load_model(resolve_model("offline", precision=precision))
    model.eval()
    began = time.perf_counter()
    features = model.tokenize(["passage: " + text for text in texts])
    tokenise = time.perf_counter() - began
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            model(dict(features))
        walls = []
        for _ in range(3):
            began = time.perf_counter()
            model(dict(features))
            walls.append(time.perf_counter() - began)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            began = time.perf_counter()
            model(dict(features))
            profiled = time.perf_counter() - began
    tokens = int(features["attention_mask"].sum())
    print(f" {precision}: tokenise {tokenise * 1e3:.0f} ms; forward median {statistics.median(walls) * 1e3:.0f} ms "
          f"({tokens} tokens, {tokens / statistics.median(walls):.0f} tokens/s)")
    show("profiled forward", profiled, prof)


def profile_openvino(texts: list[str], label: str) -> None:
    """The openvino engine in bf16 on one batch: forward time, and OpenVINO's own per-node timings by node type."""
    from hybridir.models.openvino_engine import INPUTS, OpenVINOTransformer

    model = load_model(resolve_model("offline"))
    features = model.tokenize(["passage: " + text for text in texts])
    example = {name: features[name] for name in INPUTS if name in features}
    engine = OpenVINOTransformer(model[0].auto_model.eval(), example, "bf16", torch.get_num_threads(),
                                 options={"PERF_COUNT": True})
    request = engine.compiled.create_infer_request()
    inputs = {name: tensor.numpy() for name, tensor in example.items()}
    for _ in range(2):  # warm-up
        request.infer(inputs)
    walls = []
    for _ in range(3):
        began = time.perf_counter()
        request.infer(inputs)
        walls.append(time.perf_counter() - began)
    wall = statistics.median(walls)
    by_type: dict[str, float] = defaultdict(float)
    for node in request.profiling_info:  # the last inference's
        by_type[node.node_type] += node.real_time.total_seconds()
    tokens = int(features["attention_mask"].sum())
    parts = ", ".join(f"{kind} {seconds / wall:.0%}" for kind, seconds in sorted(by_type.items(), key=lambda kv: -kv[1])[:6])
    print(f" openvino bf16, {label}: forward median {wall * 1e3:.0f} ms ({tokens} tokens, {tokens / wall:.0f} "
          f"tokens/s); by OpenVINO node type: {parts}")


def profile_training(queries: list[str], passages: list[str], precision: str) -> dict[str, float]:
    torch.manual_seed(0)
    spec = resolve_model("offline", max_seq_length=128)
    model = load_model(spec)
    model[0].auto_model.get_input_embeddings().requires_grad_(False)
    model.train()
    loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-5, weight_decay=0.01)
    autocast = torch.autocast("cpu", dtype=torch_dtype("bf16"), enabled=precision == "bf16")

    def step(prof=None) -> dict[str, float]:
        phases = {}
        began = time.perf_counter()
        features = [model.tokenize([spec.query_prompt + q for q in queries]),
                    model.tokenize([spec.passage_prompt + p for p in passages])]
        phases["tokenise"] = time.perf_counter() - began
        began = time.perf_counter()
        with autocast:
            loss = loss_fn([dict(f) for f in features], None)
        phases["forward"] = time.perf_counter() - began
        began = time.perf_counter()
        loss.backward()
        phases["backward"] = time.perf_counter() - began
        began = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        phases["optimizer"] = time.perf_counter() - began
        return phases

    for _ in range(2):
        step()
    runs = [step() for _ in range(3)]
    median = {phase: statistics.median(run[phase] for run in runs) for phase in runs[0]}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        began = time.perf_counter()
        step()
        profiled = time.perf_counter() - began
    total = sum(median.values())
    print(f" {precision}: step median {total:.2f} s = " + ", ".join(f"{phase} {seconds:.2f} s ({seconds / total:.0%})"
                                                                for phase, seconds in median.items()))
    show("profiled step", profiled, prof)
    return median


def main() -> None:
    torch.set_num_threads(2)
    print(f"hardware: {hardware()}\nversions: {versions()}\ntorch threads: {torch.get_num_threads()}\n")
    data = load_lareqa("xquad-r")
    sentences = data.candidates.sentence.tolist()
    model = load_model(resolve_model("offline"))
    share = padding_share(model, sentences + data.questions.text.tolist())
    print(f"padding: {share:.1%} of the token positions computed when encoding XQuAD-R (length-sorted batches of 64)")

    by_length = sorted(sentences, key=len)
    middle = len(by_length) // 2
    batch = by_length[middle - 32:middle + 32]
    print("\nencoding one batch of 64 median-length XQuAD-R candidates:")
    for precision in ("fp32", "bf16"):
        profile_encoding(batch, precision)
    questions = sorted(data.questions.text.tolist(), key=len)
    long = by_length[int(0.99 * len(by_length)) - 32:int(0.99 * len(by_length)) + 32]
    for texts, label in ((batch, "the same batch"), (questions[len(questions) // 2 - 32:len(questions) // 2 + 32],
                                                      "64 median-length questions"),
                         (long, "64 candidates at the 99th length percentile")):
        profile_openvino(texts, label)

    pairs = lareqa_parallel("mlqa-r").pairs.sample(n=32, random_state=0)
    print("\ntraining step, MNRL, batch 32 MLQA-R pairs, max length 128, frozen word embeddings:")
    steps = {precision: profile_training(pairs["query"].tolist(), pairs["positive"].tolist(), precision)
             for precision in ("fp32", "bf16")}
    fp32, bf16 = (sum(steps[p].values()) for p in ("fp32", "bf16"))
    print(f"\nsummary: padding {share:.1%}; training step fp32 {fp32:.2f} s, bf16 {bf16:.2f} s "
          f"({fp32 / bf16:.2f}x); tokenisation {steps['bf16']['tokenise'] / bf16:.1%} and AdamW "
          f"{steps['bf16']['optimizer'] / bf16:.1%} of a bf16 step")


if __name__ == "__main__":
    main()
