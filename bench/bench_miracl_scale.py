"""MIRACL at corpus scale: memory of the sharded search against the in-memory one, and encoding throughput.

Two measurements, each phase in its own process so that each reports its own peak memory:

- memory: synthetic corpora of ``--sizes`` passages (default 200,000 and 1,000,000) in the hub's layout, every
  passage judged for a yo dev topic planted among them, evaluated by a tiny random 2-layer XLM-R (plumbing
  only: its speed is not the point, memory is) through ``evaluate_miracl`` (streamed, sharded, on disk) and
  through ``evaluate_corpus`` (the whole corpus in a DataFrame, encoded into one array, one ``IndexFlatIP``:
  what MIRACL ran before, and BEIR still runs). Peak RSS (ru_maxrss) and peak anonymous memory (RssAnon,
  sampled) per size; the issue's goal: the sharded peak flat within 10% from the smaller size to the larger.
- throughput: the offline multilingual-e5-small encoding Wikipedia paragraphs (XQuAD-R's contexts, 11
  languages, as MIRACL's passages are) with the encoding ``search_corpus`` runs (``encode_in_chunks``) on 1
  process and on ``--processes`` CPU processes (sentence-transformers' pool), passages/s after a warm-up, the
  pool's start-up timed apart; the paper's passages (its 15 languages) extrapolated from the best rate. Where CUDA is present, the same on 1 and on every GPU with
  an XLM-R-base-shaped random model (12 layers, 768 dimensions) over ``--gpu-passages`` synthetic passages.

Usage: python bench/bench_miracl_scale.py [--sizes N ...] [--processes P] [--passages N]; run it alone (two torch
processes on two cores slow each other several-fold). Needs HYBRIDIR_DATA_DIR (yo topics and qrels, XQuAD-R,
multilingual-e5-small's tokenizer for the tiny model).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_jsonl_scale import AnonymousPeak, peak_gb  # same folder

WORDS = [f"w{i}" for i in range(20_000)]


def write_corpus(root: Path, passages: int) -> None:
    """``passages`` passages of 8-40 words over files of 100,000 (the hub's docs-<n>.jsonl.gz), yo's judged ids
    among them."""
    import numpy as np

    from hybridir.data.miracl import load_miracl_qrels

    judged = sorted({doc for docs in load_miracl_qrels("yo").values() for doc in docs})
    rng = np.random.default_rng(0)
    ids = judged + [f"{10_000_000 + i}#0" for i in range(passages - len(judged))]
    folder = root / "miracl-corpus-v1.0-yo"
    folder.mkdir(parents=True)
    words = np.array(WORDS)
    for part, start in enumerate(range(0, passages, 100_000)):
        with gzip.open(folder / f"docs-{part}.jsonl.gz", "wt", encoding="utf-8", compresslevel=1) as handle:
            for doc in ids[start:start + 100_000]:
                text = " ".join(words[rng.integers(0, len(words), int(rng.integers(8, 40)))])
                handle.write(json.dumps({"docid": doc, "title": f"title {doc}", "text": text}) + "\n")


def tiny_model(folder: Path, hidden: int = 32, layers: int = 2) -> None:
    """A random XLM-R with multilingual-e5-small's tokenizer (tests/conftest.py's at hidden 32, 2 layers)."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    from hybridir import paths

    tokenizer = paths.data_dir() / "models" / "multilingual-e5-small" / "tokenizer.json"
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=250002, hidden_size=hidden, num_hidden_layers=layers,
                              num_attention_heads=max(2, hidden // 64), intermediate_size=4 * hidden,
                              max_position_embeddings=514)
    XLMRobertaModel(config).save_pretrained(folder)
    XLMRobertaTokenizerFast(tokenizer_file=str(tokenizer), model_max_length=512).save_pretrained(folder)


def memory_phase(path: str, corpus: Path, model_folder: Path) -> dict:
    from hybridir.models.spec import resolve_model

    model = resolve_model("xlm-roberta-base", path=model_folder)
    anonymous = AnonymousPeak()
    anonymous.start()
    start = time.perf_counter()
    if path == "sharded":
        from hybridir.evaluation.retrieval import evaluate_miracl

        tidy, _ = evaluate_miracl(model, "yo", corpus, batch_size=128)
    else:
        import pandas as pd

        from hybridir.data.miracl import load_miracl_qrels, load_miracl_topics, stream_miracl_corpus
        from hybridir.evaluation.retrieval import MIRACL_METRICS, evaluate_corpus

        frame = pd.DataFrame([row for batch in stream_miracl_corpus("yo", corpus)
                              for row in zip(batch["docid"], batch["title"], batch["text"])],
                             columns=["doc_id", "title", "text"])
        tidy, _ = evaluate_corpus(model, load_miracl_topics("yo"), frame, load_miracl_qrels("yo"), dataset="miracl",
                                  query_language="yo", candidate_language="yo", metrics=MIRACL_METRICS,
                                  batch_size=128)
    return {"seconds": round(time.perf_counter() - start, 1), "peak_rss_gb": round(peak_gb(), 3),
            "peak_anonymous_gb": round(anonymous.peak / 1e9, 3),
            "ndcg@10": round(float(tidy.loc[tidy.metric == "ndcg@10", "value"].item()), 4)}


def throughput_phase(devices: list[str], passages: int, model_folder: Path | None) -> dict:
    """Passages/s of the encoding ``search_corpus`` runs (``encode_in_chunks``, its chunks, in a pool over
    ``devices`` or in this process), after a warm-up chunk per worker; the pool's start-up timed apart."""
    import numpy as np

    from hybridir.encoding import encode_in_chunks, encoding_pool
    from hybridir.evaluation.corpus_search import CHUNK_BATCHES
    from hybridir.models.spec import resolve_model

    if model_folder is None:  # the offline model on real paragraphs
        from hybridir.data.lareqa import load_lareqa

        model = resolve_model("offline", precision="fp32", engine="torch")
        texts = list(dict.fromkeys(load_lareqa("xquad-r").candidates.context))
        batch = 16
    else:  # an XLM-R-base-shaped random model on synthetic passages (GPU)
        model = resolve_model("xlm-roberta-base", path=model_folder)
        rng = np.random.default_rng(0)
        texts = [" ".join(rng.choice(WORDS, int(rng.integers(40, 160)))) for _ in range(passages + 4096)]
        batch = 256
    chunk = batch * CHUNK_BATCHES
    warm_up, measured = texts[:chunk * max(1, len(devices))], texts[-passages:]
    started = time.perf_counter()
    with encoding_pool(model, devices) as pool:
        pool_seconds = time.perf_counter() - started
        encode_in_chunks(model, warm_up, "passage", batch_size=batch, chunk_size=chunk, pool=pool)
        started = time.perf_counter()
        encode_in_chunks(model, measured, "passage", batch_size=batch, chunk_size=chunk, pool=pool)
        seconds = time.perf_counter() - started
    return {"passages": len(measured), "seconds": round(seconds, 1),
            "passages_per_second": round(len(measured) / seconds, 2),
            "pool_start_seconds": round(pool_seconds, 1) if pool_seconds > 0.01 else None}


def child(args: list[str], env: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"phase {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=("memory", "throughput"), default=["memory", "throughput"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--passages", type=int, default=512,
                        help="paragraphs per throughput measurement (CPU): 4 chunks of 128, 2 per worker of 2")
    parser.add_argument("--gpu-passages", type=int, default=1_000_000)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--devices", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase in ("sharded", "in-memory"):
        print(json.dumps(memory_phase(args.phase, args.corpus, args.model)))
        return
    if args.phase == "throughput":
        print(json.dumps(throughput_phase(args.devices, args.passages, args.model)))
        return

    import torch

    from hybridir.data.miracl import MIRACL_PASSAGES
    from hybridir.presets import PAPER_MIRACL_LANGUAGES
    from hybridir.provenance import hardware, versions

    paper_passages = sum(MIRACL_PASSAGES[lang] for lang in PAPER_MIRACL_LANGUAGES)  # its Table 11

    print(f"# {__doc__.splitlines()[0]}")
    print(f"# hardware: {json.dumps(hardware())}")
    print(f"# versions: {json.dumps(versions())}")
    with tempfile.TemporaryDirectory(prefix="bench-miracl-") as tmp:
        work = Path(tmp)
        tiny_model(work / "tiny")
        if "memory" in args.parts:
            print("\n## memory: a tiny random model over synthetic corpora (yo's 119 dev topics)")
            peaks = {}
            for size in args.sizes:
                write_corpus(work / f"corpus-{size}", size)
                for path in ("sharded", "in-memory"):
                    env = os.environ | {"HYBRIDIR_CACHE_DIR": str(work / f"cache-{path}-{size}")}
                    figures = child(["--phase", path, "--corpus", str(work / f"corpus-{size}"), "--model",
                                     str(work / "tiny")], env)
                    peaks[path, size] = figures["peak_rss_gb"]
                    print(f"{path:9s} {size:>9,} passages {json.dumps(figures)}", flush=True)
            small, large = min(args.sizes), max(args.sizes)
            for path in ("sharded", "in-memory"):
                print(f"{path}: peak RSS at {large:,} / at {small:,} passages = "
                      f"{peaks[path, large] / peaks[path, small]:.3f}")
        if "throughput" in args.parts:
            print(f"\n## throughput: the offline multilingual-e5-small (fp32, torch), {args.passages} XQuAD-R paragraphs")
            rates = []
            for processes in sorted({1, args.processes}):
                devices = [] if processes == 1 else ["cpu"] * processes
                env = os.environ | {"HYBRIDIR_CACHE_DIR": str(work / "cache-throughput")}  # one offline conversion
                figures = child(["--phase", "throughput", "--passages", str(args.passages), "--devices", *devices], env)
                rates.append(figures["passages_per_second"])
                print(f"{processes} process{'es' if processes > 1 else ''}: {json.dumps(figures)}", flush=True)
            best = max(rates)
            print(f"the paper's {paper_passages:,} MIRACL passages at {best:.1f} passages/s: "
                  f"{paper_passages / best / 3600 / 24:.0f} days per model on this CPU")
            if torch.cuda.is_available():
                tiny_model(work / "base", hidden=768, layers=12)
                print(f"\n## throughput: an XLM-R-base-shaped random model, {args.gpu_passages:,} synthetic passages")
                for gpus in sorted({1, torch.cuda.device_count()}):
                    devices = [f"cuda:{i}" for i in range(gpus)]
                    env = os.environ | {"HYBRIDIR_CACHE_DIR": str(work / "cache-gpu")}
                    figures = child(["--phase", "throughput", "--passages", str(args.gpu_passages), "--model",
                                     str(work / "base"), "--devices", *(devices if gpus > 1 else [])], env)
                    print(f"{gpus} GPU{'s' if gpus > 1 else ''}: {json.dumps(figures)}; the paper's passages: "
                          f"{paper_passages / figures['passages_per_second'] / 3600:.1f} h per model",
                          flush=True)
            else:
                print("\nno GPU on this machine: the GPU throughput was not measured")


if __name__ == "__main__":
    main()
