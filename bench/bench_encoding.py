"""Benchmark: what the labelled progress bar costs the encoder.

    HYBRIDIR_CACHE_DIR=.cache HYBRIDIR_DATA_DIR=../shared/data \
        .venv/bin/python bench/bench_encoding.py | tee results/bench/bench_encoding.txt

``hybridir.encoding`` encodes sentence-transformers' own length-sorted batches one ``encode`` call
each, so its progress bar can say what it encodes ("xquad-r, 11 languages: candidates"). This run
encodes the same distinct XQuAD-R texts (questions and sentence candidates, the first ``--texts``)
with the offline model in ``--precision`` (a) that way and (b) in one ``SentenceTransformer.encode``
call, in interleaved rounds, and prints the seconds of each, their ratio and whether the two
embedding matrices are identical. Goal (issue 10): (a) ≤ 1.02 × (b), and identical embeddings.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from hybridir import encoding
from hybridir.data.lareqa import load_lareqa
from hybridir.models.spec import resolve_model
from hybridir.provenance import hardware, versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    spec = resolve_model("offline", precision=args.precision)
    data = load_lareqa("xquad-r")
    texts, _ = encoding._unique(data.questions.text.tolist() + data.candidates.sentence.tolist())
    texts = texts[:args.texts]
    model = encoding._encoder(spec)
    print(f"hardware: {hardware()}\nversions: {versions()}")
    print(f"{len(texts)} distinct XQuAD-R texts, offline model, {spec.precision}, batch {args.batch_size}\n")

    def ours() -> np.ndarray:
        return encoding._encode_now(spec, texts, "passage", args.batch_size, progress=None)

    def one_call() -> np.ndarray:
        return np.asarray(model.encode(texts, prompt_name="passage", batch_size=args.batch_size,
                                       normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False),
                          dtype=np.float32)

    seconds: dict[str, list[float]] = {"per batch (hybridir)": [], "one encode() call": []}
    vectors = {}
    for round_ in range(args.rounds):
        for name, run in (("per batch (hybridir)", ours), ("one encode() call", one_call)):
            began = time.perf_counter()
            vectors[name] = run()
            seconds[name].append(time.perf_counter() - began)
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in seconds.items()), flush=True)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    for name, value in median.items():
        print(f"{name:>22}: median {value:.2f} s, {len(texts) / value:.1f} texts/s")
    ratio = median["per batch (hybridir)"] / median["one encode() call"]
    same = np.array_equal(*vectors.values())
    print(f"\nper batch / one call: {ratio:.3f} (goal ≤ 1.02) {'OK' if ratio <= 1.02 else 'MISSED'}")
    print(f"identical embeddings: {same}")


if __name__ == "__main__":
    main()
