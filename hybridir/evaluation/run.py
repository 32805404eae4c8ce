"""One evaluation run: config in, ``tidy.csv`` + ``summary.csv`` + ``provenance.json`` out."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from hybridir.data.lareqa import DATASETS as LAREQA_DATASETS
from hybridir.evaluation.corpus_search import SHARD_PASSAGES
from hybridir.evaluation.lareqa import SETTINGS, check_candidate_text, check_settings
from hybridir.models.engine import DEFAULT_ENGINE, ENGINES, check_engine
from hybridir.models.precision import DEFAULT_PRECISION, PRECISIONS, check_precision
from hybridir.models.spec import ModelSpec, resolve_model
from hybridir.options import option
from hybridir.provenance import EVALUATION_CODE, code_digest, provenance, write_provenance

PER_QUERY = "per_query.csv.gz"


@dataclass(frozen=True)
class EvaluationConfig:
    """One evaluation: model, dataset, protocol options. Checked when built, so a bad preset or option fails
    before minutes of encoding (the languages, which need the data, are checked when it loads)."""

    model: str = option("offline", "'offline', a hub id (intfloat/multilingual-e5-small, xlm-roberta-base, "
                                   "sentence-transformers/LaBSE) or a local folder")
    dataset: str = option("xquad-r", "xquad-r | mlqa-r | scifact | miracl | a BEIR-format directory")
    model_path: str | None = option(None, "local copy of a hub preset (same layout)")
    languages: list[str] | None = option(None, "LAReQA query languages or MIRACL languages (default all)",
                                         metavar="LANG")
    settings: list[str] = option(list(SETTINGS), "LAReQA settings: mono cross multi", metavar="SETTING")
    candidate_text: str = option("sentence", "sentence | sentence+context (LAReQA)")
    max_question_ids: int | None = option(None, "LAReQA: keep N question ids, whole articles drawn at random (by "
                                                "--subset-seed), and the paragraphs answering them; default all")
    subset_seed: int = option(0, "LAReQA: the seed of the articles --max-question-ids draws")
    corpus_dataset: str | None = option(None, "BEIR: search this dataset's corpus (cross-lingual variant)")
    query_language: str = option("en", "BEIR: language of the queries")
    corpus_language: str | None = option(None, "BEIR: language of the corpus (default: the query language)")
    miracl_corpus: str = option("miracl/miracl-corpus", "MIRACL corpus: hub id or local directory in the hub's layout")
    encode_devices: list[str] | None = option(None, "MIRACL: encode the corpus on these devices at once, one "
                                                    "process each (cuda:0 cuda:1, or cpu cpu); default every GPU "
                                                    "where there are several, else this process", metavar="DEVICE")
    corpus_shard_size: int = option(SHARD_PASSAGES, "MIRACL: passages per corpus shard (the unit of the embedding "
                                                    "cache and of resuming)")
    batch_size: int | None = option(None, "texts per encoding batch (default: 16 on a CPU, where larger batches "
                                          "ran slower, 128 on a GPU)")
    trec_runs: bool = option(False, "LAReQA, MIRACL: also write TREC run files (top 100)")
    per_query: bool = option(False, "also write per_query.csv.gz (each query's metrics, the units of paired "
                                    "significance tests)")
    precision: str = option(DEFAULT_PRECISION, "encoder weights: fp32, bf16 (fast on CPUs with AMX or AVX512-BF16 "
                                               "and recent GPUs), fp16 (GPU), auto (bf16 where fast, else fp32); "
                                               "embeddings are float32 either way", choices=PRECISIONS)
    engine: str = option(DEFAULT_ENGINE, "what runs the encoder: torch (eager; with fp32 the reference), openvino "
                                         "(CPU; bf16 computes in bf16 over fp32 weights), auto (openvino for "
                                         "bf16 on a CPU-only machine, else torch)", choices=ENGINES)
    max_length: int | None = option(None, "tokens per text (default: the model's own; a trained run's is its "
                                          "training length)")

    def __post_init__(self) -> None:
        if self.batch_size is not None and (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
                                            or self.batch_size < 1):
            raise ValueError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.max_length is not None and (isinstance(self.max_length, bool) or not isinstance(self.max_length, int)
                                            or self.max_length < 8):
            raise ValueError(f"--max-length must be an integer of at least 8 tokens, got {self.max_length}")
        if self.max_question_ids is not None and (isinstance(self.max_question_ids, bool) or self.max_question_ids < 1):
            raise ValueError(f"--max-question-ids must be a positive integer, got {self.max_question_ids}")
        if isinstance(self.corpus_shard_size, bool) or not isinstance(self.corpus_shard_size, int) \
                or self.corpus_shard_size < 1:
            raise ValueError(f"--corpus-shard-size must be a positive number of passages, got "
                             f"{self.corpus_shard_size!r}")
        if isinstance(self.subset_seed, bool) or not isinstance(self.subset_seed, int) or self.subset_seed < 0:
            raise ValueError(f"--subset-seed must be an integer ≥ 0, got {self.subset_seed!r}")
        check_precision(self.precision)
        check_engine(self.engine)
        check_settings(self.settings)
        check_candidate_text(self.candidate_text)
        _check_options_fit_dataset(self)


def run_evaluation(config: EvaluationConfig, output: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate, write the three files to ``output`` and return (tidy, summary)."""
    model = evaluated_model(config)
    output = Path(output)
    if config.dataset in LAREQA_DATASETS:
        tidy, summary, per_query, checksum = _lareqa(config, model, output)
    elif config.dataset == "miracl":
        tidy, summary, per_query, checksum = _miracl(config, model, output)
    else:
        tidy, summary, per_query, checksum = _beir(config, model)
    output.mkdir(parents=True, exist_ok=True)
    if config.per_query:
        per_query.to_csv(output / PER_QUERY, index=False, float_format="%.6g")
    tidy.insert(1, "model", model.name)
    tidy.to_csv(output / "tidy.csv", index=False)
    summary.to_csv(output / "summary.csv")
    record = provenance(asdict(config) | {"model_spec": asdict(model)}, checksum, model.fingerprint())
    record["code_digest"] = code_digest(EVALUATION_CODE)  # the runner re-evaluates when this code changed
    write_provenance(output, record)
    return tidy, summary


def evaluated_model(config: EvaluationConfig) -> ModelSpec:
    """The model as the evaluation runs it: its precision and engine, and ``max_length`` where one is given."""
    length = {} if config.max_length is None else {"max_seq_length": config.max_length}
    return resolve_model(config.model, path=config.model_path, precision=config.precision, engine=config.engine,
                         **length)


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
        misplaced = {"--max-question-ids": config.max_question_ids, "--subset-seed": config.subset_seed != 0,
                     "--trec-runs": config.trec_runs and config.dataset != "miracl",
                     "--candidate-text": config.candidate_text != "sentence",
                     "--settings": list(config.settings) != list(SETTINGS)}
    if config.dataset != "miracl":
        misplaced |= {"--encode-devices": config.encode_devices is not None,
                      "--corpus-shard-size": config.corpus_shard_size != SHARD_PASSAGES}
    given = [name for name, value in misplaced.items() if value]
    if given:
        verb, pronoun = ("does", "it") if len(given) == 1 else ("do", "them")
        raise ValueError(f"{', '.join(given)} {verb} not apply to --dataset {config.dataset}; drop {pronoun}")


def _lareqa(config: EvaluationConfig, model, output: Path):
    from hybridir.data.lareqa import load_lareqa, subset_lareqa
    from hybridir.evaluation.lareqa import check_languages, embed_lareqa, lareqa_results, summarize, write_trec_run

    data = load_lareqa(config.dataset)
    check_languages(data, config.languages)  # bad arguments fail before minutes of encoding
    if config.max_question_ids is not None:
        data = subset_lareqa(data, config.max_question_ids, seed=config.subset_seed)
    questions, candidates = embed_lareqa(model, data, config.candidate_text, config.batch_size)
    tidy, per_query = lareqa_results(data, questions, candidates, config.settings, config.languages,
                                     per_query=config.per_query)
    if config.trec_runs:
        for language in config.languages or data.languages:
            write_trec_run(output / "runs" / f"multi-{language}.trec", data, questions, candidates, language)
    return tidy, summarize(tidy), per_query, data.checksum


def _beir(config: EvaluationConfig, model):
    from hybridir.data.beir import load_beir
    from hybridir.evaluation.retrieval import evaluate_beir

    dataset = load_beir(config.dataset)
    corpus_dataset = load_beir(config.corpus_dataset) if config.corpus_dataset else None
    name = Path(config.dataset).name
    tidy, per_query = evaluate_beir(model, dataset, name=name, language=config.query_language,
                                    corpus_dataset=corpus_dataset, corpus_language=config.corpus_language,
                                    batch_size=config.batch_size)
    checksum = dataset.checksum + (f"+{corpus_dataset.checksum}" if corpus_dataset else "")
    return tidy, _per_language(tidy), per_query, checksum


def _miracl(config: EvaluationConfig, model, output: Path):
    from hybridir.data.miracl import MIRACL_LANGUAGES, miracl_checksum
    from hybridir.encoding import encoding_devices
    from hybridir.evaluation.retrieval import evaluate_miracl

    languages = config.languages or [lang for lang in MIRACL_LANGUAGES if lang != "en"]
    unknown = sorted(set(languages) - set(MIRACL_LANGUAGES))
    if unknown:  # before hours of encoding the languages listed first
        raise ValueError(f"MIRACL has no dev language {unknown[0]!r}; choose from: {', '.join(MIRACL_LANGUAGES)}")
    devices = encoding_devices(config.encode_devices)
    results = [evaluate_miracl(model, lang, config.miracl_corpus, batch_size=config.batch_size, devices=devices,
                               shard_size=config.corpus_shard_size,
                               run_file=output / "runs" / f"miracl-{lang}.trec" if config.trec_runs else None)
               for lang in languages]
    tidy = pd.concat([tidy for tidy, _ in results], ignore_index=True)
    per_query = pd.concat([per_query for _, per_query in results], ignore_index=True)
    summary = _per_language(tidy)
    summary.loc["Median"] = summary.drop(index="Mean").median()
    return tidy, summary, per_query, f"{miracl_checksum(languages)}:corpus={config.miracl_corpus}"


def _per_language(tidy: pd.DataFrame) -> pd.DataFrame:
    table = tidy.pivot_table(index="query_language", columns="metric", values="value", sort=False)
    table.loc["Mean"] = table.mean()
    return table
