"""One evaluation run: config in, ``tidy.csv`` + ``summary.csv`` + ``provenance.json`` out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from hybridir.data.lareqa import DATASETS as LAREQA_DATASETS
from hybridir.evaluation.lareqa import SETTINGS
from hybridir.models.precision import DEFAULT_PRECISION
from hybridir.models.spec import ModelSpec, resolve_model
from hybridir.provenance import EVALUATION_CODE, code_digest, provenance, write_provenance

PER_QUERY = "per_query.csv.gz"


@dataclass(frozen=True)
class EvaluationConfig:
    model: str = "offline"
    dataset: str = "xquad-r"
    model_path: str | None = None
    languages: list[str] | None = None
    settings: list[str] = field(default_factory=lambda: list(SETTINGS))
    candidate_text: str = "sentence"
    max_question_ids: int | None = None
    corpus_dataset: str | None = None
    query_language: str = "en"
    corpus_language: str | None = None
    miracl_corpus: str = "miracl/miracl-corpus"
    batch_size: int = 64
    trec_runs: bool = False
    per_query: bool = False  # LAReQA: also write per_query.csv.gz (the units of paired significance tests)
    precision: str = DEFAULT_PRECISION  # fp32 | bf16 | fp16 | auto (see hybridir.models.precision)
    # Tokens per text; None = the model's own (a trained run keeps its training length, e.g. 128).
    max_length: int | None = None


def run_evaluation(config: EvaluationConfig, output: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate, write the three files to ``output`` and return (tidy, summary)."""
    if config.max_length is not None and (isinstance(config.max_length, bool) or config.max_length < 8):
        raise ValueError(f"--max-length must be an integer of at least 8 tokens, got {config.max_length}")
    model = evaluated_model(config)
    if config.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {config.batch_size}")
    _check_options_fit_dataset(config)
    output = Path(output)
    if config.dataset in LAREQA_DATASETS:
        tidy, summary, checksum = _lareqa(config, model, output)
    elif config.dataset == "miracl":
        tidy, summary, checksum = _miracl(config, model)
    else:
        tidy, summary, checksum = _beir(config, model)
    output.mkdir(parents=True, exist_ok=True)
    tidy.insert(1, "model", model.name)
    tidy.to_csv(output / "tidy.csv", index=False)
    summary.to_csv(output / "summary.csv")
    record = provenance(asdict(config) | {"model_spec": asdict(model)}, checksum, model.fingerprint())
    record["code_digest"] = code_digest(EVALUATION_CODE)  # the runner re-evaluates when this code changed
    write_provenance(output, record)
    return tidy, summary


def evaluated_model(config: EvaluationConfig) -> ModelSpec:
    """The model as the evaluation runs it: its precision, and ``max_length`` where one is given."""
    length = {} if config.max_length is None else {"max_seq_length": config.max_length}
    return resolve_model(config.model, path=config.model_path, precision=config.precision, **length)


def _check_options_fit_dataset(config: EvaluationConfig) -> None:
    """Refuse an unknown dataset, and options the chosen dataset would silently ignore."""
    from hybridir.data.sources import BEIR_SOURCES

    named = (*LAREQA_DATASETS, *BEIR_SOURCES, "miracl")
    for flag, dataset in (("--dataset", config.dataset), ("--corpus-dataset", config.corpus_dataset)):
        if dataset is not None and dataset not in named and not Path(dataset).is_dir():
            raise FileNotFoundError(f"{flag} {dataset} is neither one of {', '.join(named)} nor a BEIR-format "
                                    "directory")
    if config.dataset in LAREQA_DATASETS:
        misplaced = {"--corpus-dataset": config.corpus_dataset, "--corpus-language": config.corpus_language}
    else:
        misplaced = {"--max-question-ids": config.max_question_ids, "--trec-runs": config.trec_runs,
                     "--per-query": config.per_query,
                     "--candidate-text": config.candidate_text != "sentence",
                     "--settings": list(config.settings) != list(SETTINGS)}
    given = [name for name, value in misplaced.items() if value]
    if given:
        verb, pronoun = ("does", "it") if len(given) == 1 else ("do", "them")
        raise ValueError(f"{', '.join(given)} {verb} not apply to --dataset {config.dataset}; drop {pronoun}")


def _lareqa(config: EvaluationConfig, model, output: Path):
    from hybridir.data.lareqa import load_lareqa, subset_lareqa
    from hybridir.evaluation.lareqa import (check_languages, check_settings, embed_lareqa, lareqa_results,
                                            summarize, write_trec_run)

    data = load_lareqa(config.dataset)
    check_settings(config.settings)  # bad arguments fail before minutes of encoding
    check_languages(data, config.languages)
    if config.max_question_ids is not None:
        data = subset_lareqa(data, config.max_question_ids)
    questions, candidates = embed_lareqa(model, data, config.candidate_text, config.batch_size)
    tidy, per_query = lareqa_results(data, questions, candidates, config.settings, config.languages)
    if config.per_query:
        output.mkdir(parents=True, exist_ok=True)
        per_query.to_csv(output / PER_QUERY, index=False)
    if config.trec_runs:
        for language in config.languages or data.languages:
            write_trec_run(output / "runs" / f"multi-{language}.trec", data, questions, candidates, language)
    return tidy, summarize(tidy), data.checksum


def _beir(config: EvaluationConfig, model):
    from hybridir.data.beir import load_beir
    from hybridir.evaluation.retrieval import evaluate_beir

    dataset = load_beir(config.dataset)
    corpus_dataset = load_beir(config.corpus_dataset) if config.corpus_dataset else None
    name = Path(config.dataset).name
    tidy = evaluate_beir(model, dataset, name=name, language=config.query_language, corpus_dataset=corpus_dataset,
                         corpus_language=config.corpus_language, batch_size=config.batch_size)
    checksum = dataset.checksum + (f"+{corpus_dataset.checksum}" if corpus_dataset else "")
    return tidy, _per_language(tidy), checksum


def _miracl(config: EvaluationConfig, model):
    from hybridir.data.miracl import MIRACL_LANGUAGES, miracl_checksum
    from hybridir.evaluation.retrieval import evaluate_miracl

    languages = config.languages or [lang for lang in MIRACL_LANGUAGES if lang != "en"]
    tidy = pd.concat([evaluate_miracl(model, lang, config.miracl_corpus, batch_size=config.batch_size)
                      for lang in languages], ignore_index=True)
    summary = _per_language(tidy)
    summary.loc["Median"] = summary.drop(index="Mean").median()
    return tidy, summary, f"{miracl_checksum(languages)}:corpus={config.miracl_corpus}"


def _per_language(tidy: pd.DataFrame) -> pd.DataFrame:
    table = tidy.pivot_table(index="query_language", columns="metric", values="value", sort=False)
    table.loc["Mean"] = table.mean()
    return table
