"""A user's JSONL at scale, end to end: converted into the Arrow cache, opened again, trained a few steps.

Writes a synthetic JSONL of ``--items`` items (default 2,000,000) in 7 languages (14M lines: query, positive),
then runs each phase in its own process so that each reports its own peak resident memory:

- imports: the libraries alone, the floor under the other phases;
- convert: ``convert_parallel_jsonl`` from scratch (parse and check every line, sort, hash texts, write);
- reopen: the same call again, which finds the conversion in the cache;
- train: ``hybridir.training.train`` on the file for ``--steps`` hybrid steps of 32 with a tiny random 2-layer
  XLM-R (plumbing only: the steps' speed is not the point, memory and the data path are), which converts
  nothing (cached), builds the pair table and sampler, and reads each batch's texts from the memory-mapped rows.

Issue 18's question: does memory grow with the items, not with the texts or language pairs? Reported beside
the JSONL's size, as peak RSS (ru_maxrss) and peak anonymous memory (RssAnon, sampled): the difference is pages
of the memory-mapped files, which the kernel reclaims under pressure. Usage: python bench/bench_jsonl_scale.py [--items N] [--steps S]; run it alone (two torch
processes on two cores slow each other several-fold). Needs multilingual-e5-small's tokenizer.json in
HYBRIDIR_DATA_DIR/models (the tiny model's vocabulary).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LANGUAGES = ("ar", "de", "en", "es", "hi", "ru", "zh")  # mMARCO's 7 in the paper
WORDS = ("river", "market", "engine", "winter", "garden", "letter", "signal", "forest", "bridge", "planet")


def write_jsonl(path: Path, n_items: int) -> None:
    """Every item in every language; texts differ per item and language (~120 bytes a line)."""
    with open(path, "w") as out:
        for item in range(n_items):
            words = " ".join(WORDS[(item >> shift) % len(WORDS)] for shift in (0, 3, 6, 9))
            out.writelines(f'{{"id": "{item}", "language": "{lang}", "query": "what about {words} {item} in {lang}?", '
                           f'"positive": "{lang}: the {words} of item {item} is described here."}}\n'
                           for lang in LANGUAGES)


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1e3 / 1e9


class AnonymousPeak(threading.Thread):
    """The peak of RssAnon (heap: what the process needs) apart from RssFile (pages of memory-mapped files, which
    the kernel drops under pressure), sampled every 10 ms: ru_maxrss counts both."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0

    def run(self) -> None:
        while True:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("RssAnon:"):
                        self.peak = max(self.peak, int(line.split()[1]) * 1024)
            time.sleep(0.01)


def phase(name: str, jsonl: Path, work: Path, steps: int) -> dict:
    anonymous = AnonymousPeak()
    anonymous.start()
    start = time.perf_counter()
    if name == "imports":  # the floor under the others: torch, transformers, datasets, pandas loaded, no data
        for module in ("hybridir.data.store", "hybridir.training.trainer"):
            importlib.import_module(module)
        result = {}
    elif name in ("convert", "reopen"):
        from hybridir.data.store import convert_parallel_jsonl

        data = convert_parallel_jsonl(jsonl)
        result = {"rows": len(data.rows), "items": data.n_items}
    else:
        from hybridir.training.config import TrainingConfig
        from hybridir.training.trainer import train

        config = TrainingConfig(train=[str(jsonl)], model=str(work / "tiny-model"), strategy="hybrid", max_steps=steps,
                                batch_size=32, max_length=32, validation="none", patience=None, eval_steps=steps,
                                precision="fp32")
        record = train(config, work / "run", show_progress=False)
        result = {"steps": record["steps"], "slots": record["data"]["slots"],
                  "batches": record["batches"]["strategy"]}
    return {**result, "seconds": round(time.perf_counter() - start, 1), "peak_rss_gb": round(peak_gb(), 2),
            "peak_anonymous_gb": round(anonymous.peak / 1e9, 2)}


def tiny_model(folder: Path) -> None:
    """The tests' random 2-layer XLM-R (tests/conftest.py) with multilingual-e5-small's tokenizer."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    from hybridir import paths

    tokenizer = paths.data_dir() / "models" / "multilingual-e5-small" / "tokenizer.json"
    torch.manual_seed(0)
    XLMRobertaModel(XLMRobertaConfig(vocab_size=250002, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=130)).save_pretrained(folder)
    XLMRobertaTokenizerFast(tokenizer_file=str(tokenizer), model_max_length=128).save_pretrained(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2_000_000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--phase", choices=("imports", "convert", "reopen", "train"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:  # a child: one phase, its figures as JSON on the last line
        print(json.dumps(phase(args.phase, args.work / "pairs.jsonl", args.work, args.steps)))
        return

    from hybridir.provenance import hardware, versions

    with tempfile.TemporaryDirectory(prefix="bench-jsonl-") as tmp:
        work = Path(tmp)
        env = os.environ | {"HYBRIDIR_CACHE_DIR": str(work / "cache")}
        start = time.perf_counter()
        write_jsonl(work / "pairs.jsonl", args.items)
        written = time.perf_counter() - start
        tiny_model(work / "tiny-model")
        size_gb = (work / "pairs.jsonl").stat().st_size / 1e9
        print(f"# {__doc__.splitlines()[0]}")
        print(f"# hardware: {json.dumps(hardware())}")
        print(f"# versions: {json.dumps(versions())}")
        print(f"JSONL: {args.items:,} items × {len(LANGUAGES)} languages = {args.items * len(LANGUAGES):,} lines, "
              f"{size_gb:.2f} GB (written in {written:.0f} s)")
        for name in ("imports", "convert", "reopen", "train"):
            child = subprocess.run([sys.executable, __file__, "--phase", name, "--work", str(work),
                                    "--steps", str(args.steps)], env=env, capture_output=True, text=True)
            if child.returncode:
                sys.exit(f"phase {name} failed:\n{child.stderr[-3000:]}")
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"{name:8s} {json.dumps(figures)}")
        cache = work / "cache" / "pairs"
        on_disk = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 1e9
        print(f"cache on disk: {on_disk:.2f} GB ({on_disk / size_gb:.2f} × the JSONL)")


if __name__ == "__main__":
    main()
