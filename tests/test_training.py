"""The training run: config checks, output safety, exact resume, a stop on a NaN loss, a real smoke run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from interruption import StopAt  # tests/ is on sys.path (pytest's rootdir-relative imports)
from mmarco_files import mmarco_copy

from hybridir.cli import main
from hybridir.training.callbacks import NonFiniteLossError
from hybridir.training.config import TrainingConfig
from hybridir.training import trainer as trainer_module
from hybridir.training.trainer import device_loop_settings, train

LANGUAGES = ("en", "de", "fr")


@pytest.fixture(scope="module")
def tiny_train_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 ids × 3 languages: 10 batches of 4 per epoch."""
    path = tmp_path_factory.mktemp("train") / "tiny.jsonl"
    lines = [json.dumps({"id": f"item{i}", "language": lang, "query": f"question {i} in {lang}",
                         "positive": f"answer {i} written in {lang}"})
             for i in range(40) for lang in LANGUAGES]
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny_config(train_file: Path, model: Path, **overrides) -> TrainingConfig:
    settings = dict(train=[str(train_file)], model=str(model), strategy="hybrid", max_steps=14, batch_size=4,
                    learning_rate=1e-3, max_length=16, validation="none", patience=None, eval_steps=4, seed=7)
    return TrainingConfig(**(settings | overrides))


class CountSteps(TrainerCallback):
    def __init__(self) -> None:
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_resume_reaches_the_same_weights_across_an_epoch_boundary(tmp_path, tiny_train_file, tiny_xlmr_folder):
    """Interrupted at step 12 (2 steps into epoch 1; 10 batches per epoch) and resumed, a run ends with the
    weights of an uninterrupted one, dropout and sampler order included."""
    config = tiny_config(tiny_train_file, tiny_xlmr_folder)
    whole = train(config, tmp_path / "whole", show_progress=False)
    assert whole["steps"] == 14 and whole["batches"]["batches_per_epoch"] == 10
    interrupted = train(config, tmp_path / "split", show_progress=False, callbacks=[StopAt(12)])
    assert interrupted["steps"] == 12
    counter = CountSteps()
    resumed = train(config, tmp_path / "split", resume=True, show_progress=False, callbacks=[counter])
    assert resumed["steps"] == 14 and counter.steps == 2  # it continued from step 12, not from scratch
    reference, final = weights(tmp_path / "whole" / "model"), weights(tmp_path / "split" / "model")
    assert reference.keys() == final.keys()
    for name, tensor in reference.items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=1e-6, msg=name)
    initial = weights(Path(tiny_xlmr_folder))  # the run did train: the weights moved from the initial ones
    assert [name for name in initial if name in reference and not torch.equal(initial[name], reference[name])]
    losses = {entry["step"]: entry["loss"] for entry in whole["train_loss"]}
    resumed_losses = {entry["step"]: entry["loss"] for entry in resumed["train_loss"]}
    for step in (13, 14):
        assert resumed_losses[step] == pytest.approx(losses[step], abs=1e-6)


def test_tokenising_in_worker_processes_leaves_the_run_unchanged(tmp_path, tiny_train_file, tiny_xlmr_folder,
                                                                monkeypatch):
    """The GPU's data loading (batches tokenised by worker processes started each epoch), run here on the CPU
    with the optimiser held fixed, ends across an epoch boundary on the in-process loader's weights: the
    same batches and the same dropout stream."""
    gpu_loading = device_loop_settings(True) | {"optim": device_loop_settings(False)["optim"]}
    assert gpu_loading["dataloader_num_workers"] > 0
    config = tiny_config(tiny_train_file, tiny_xlmr_folder)
    in_process = train(config, tmp_path / "in-process", show_progress=False)
    monkeypatch.setattr(trainer_module, "device_loop_settings", lambda cuda: gpu_loading)
    workers = train(config, tmp_path / "workers", show_progress=False)
    assert workers["batches"] == in_process["batches"] and workers["steps"] == in_process["steps"] == 14
    reference, final = weights(tmp_path / "in-process" / "model"), weights(tmp_path / "workers" / "model")
    for name, tensor in reference.items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=1e-6, msg=name)


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_train_file, tiny_xlmr_folder,
                                                            monkeypatch):
    """From step 6 on the loss is NaN: the run stops there, says so, saves nothing after step 4."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    forward, calls = MultipleNegativesRankingLoss.forward, {"n": 0}

    def poisoned(self, *args, **kwargs):
        calls["n"] += 1
        loss = forward(self, *args, **kwargs)
        return loss * float("nan") if calls["n"] >= 8 else loss

    monkeypatch.setattr(MultipleNegativesRankingLoss, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"became nan at step 8.*checkpoint-4.*new --output"):
        train(tiny_config(tiny_train_file, tiny_xlmr_folder), tmp_path / "run", show_progress=False)
    # Step 8 is a save step (every 4): the NaN step is not saved.
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["checkpoint-4"]
    assert not (tmp_path / "run" / "model").exists()
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "diverged" and record["steps"] == 8


def test_output_is_never_overwritten_and_resume_needs_the_same_config(tmp_path, tiny_train_file, tiny_xlmr_folder):
    config = tiny_config(tiny_train_file, tiny_xlmr_folder, max_steps=4)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty; pass --resume"):
        train(config, tmp_path / "busy", show_progress=False)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(config, tmp_path / "empty", resume=True, show_progress=False)
    train(config, tmp_path / "run", show_progress=False)
    with pytest.raises(ValueError, match=r"different run than .*\(learning_rate\)"):
        train(tiny_config(tiny_train_file, tiny_xlmr_folder, max_steps=4, learning_rate=1e-4), tmp_path / "run",
              resume=True, show_progress=False)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"strategy": "mixed"}, "unknown strategy 'mixed'"),
    ({"strategy": "mono", "alpha": 0.3}, "alpha applies to the hybrid strategy only"),
    ({"alpha": 1.2}, r"must lie in \[0, 1\]"),
    ({"train": ["squad"]}, "is neither xquad-r, mlqa-r, mmarco\\[:LANGS\\] nor a .jsonl file"),
    ({"train": ["mmarco:de,de"]}, "give distinct mMARCO languages after the colon"),
    ({"train": ["mmarco:"]}, "give distinct mMARCO languages after the colon"),
    ({"train": ["mmarco", "mmarco:de,en"]}, "names a source twice"),
    ({"train": ["mmarco"], "mmarco_queries": 0}, "mmarco_queries must be a positive integer"),
    ({"train": ["missing.jsonl"]}, "does not exist"),
    ({"train": ["mlqa-r", "mlqa-r"]}, "names a source twice"),
    ({"precision": "fp8"}, "unknown precision 'fp8'"),
    ({"cross_pairs": "random"}, "unknown cross_pairs 'random'; choose one of: uniform, balanced"),
    ({"max_steps": 0}, "max_steps must be a positive integer"),
    ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
    ({"warmup_ratio": 1.0}, r"warmup_ratio is a fraction"),
    ({"validation": "squad"}, "use squadshifts, squadshifts:NAME, none or a .jsonl file"),
    ({"validation": "none", "patience": 3}, "early stopping needs validation data"),
    ({"batch_size": 1}, "batch_size must be an integer of at least 2"),
    ({"train_languages": ["en", "english"]}, "must be distinct ISO 639-1 codes"),
    ({"train_languages": []}, "must be distinct ISO 639-1 codes"),
    ({"seed": -1}, "seed must be an integer ≥ 0"),
    ({"validation": "missing.jsonl"}, "--validation file missing.jsonl does not exist"),
])
def test_config_errors_name_the_fix(overrides, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        TrainingConfig(**overrides)


def test_a_start_that_fails_on_its_inputs_leaves_the_folder_free(tmp_path, tiny_train_file, tiny_xlmr_folder):
    """The data fails to load (a language it lacks): nothing is written, and the same folder starts cleanly."""
    with pytest.raises(ValueError, match="has no pairs in es"):
        train(tiny_config(tiny_train_file, tiny_xlmr_folder, train_languages=["en", "es"], max_steps=2),
              tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run").exists()
    record = train(tiny_config(tiny_train_file, tiny_xlmr_folder, max_steps=2), tmp_path / "run", show_progress=False)
    assert record["status"] == "finished"


def test_a_run_that_fails_before_its_first_checkpoint_can_be_retried_as_typed(tmp_path, tiny_train_file,
                                                                            tiny_xlmr_folder, capsys):
    """A batch larger than a language's items fails before the folder is claimed; a failure inside the trainer
    before the first checkpoint (here: the model cannot be loaded) releases what the run wrote. The corrected
    command, with the same --output, then trains."""
    from hybridir.training import trainer as module

    base = ["train", "--train", str(tiny_train_file), "--model", str(tiny_xlmr_folder), "--max-steps", "2",
            "--max-length", "16", "--validation", "none", "--patience", "none", "--output", str(tmp_path / "run")]
    assert main([*base, "--batch-size", "64"]) == 2
    assert "has 40 items in 40 groups of shared texts, fewer than batch_size 64" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir()  # a folder the user made: kept, emptied of what the run wrote

    def broken(spec, device=None):
        raise ValueError("weights could not be read")

    original = module.load_model
    module.load_model = broken
    try:
        assert main([*base, "--batch-size", "4"]) == 2
    finally:
        module.load_model = original
    assert "weights could not be read" in capsys.readouterr().err
    assert (tmp_path / "run").is_dir() and not any((tmp_path / "run").iterdir())
    assert main([*base, "--batch-size", "4"]) == 0
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "finished" and record["best_checkpoint"] is None
    assert len(record["code_digest"]) == 16


def test_cross_batches_need_multilingual_items(tmp_path, tiny_train_file, tiny_xlmr_folder):
    with pytest.raises(ValueError, match="strategy 'cross' needs X-Y batches, but no training source"):
        train(tiny_config(tiny_train_file, tiny_xlmr_folder, strategy="cross", train_languages=["en"], max_steps=2),
              tmp_path / "run", show_progress=False)


def test_bf16_autocast_trains_and_the_record_says_so(tmp_path, tiny_train_file, tiny_xlmr_folder):
    record = train(tiny_config(tiny_train_file, tiny_xlmr_folder, precision="bf16", max_steps=2), tmp_path / "run",
                   show_progress=False)
    assert record["precision"] == "bf16" and record["status"] == "finished"
    assert all(np.isfinite(entry["loss"]) for entry in record["train_loss"])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["precision"] == "bf16"


def test_the_model_is_the_best_validation_checkpoint(tmp_path, tiny_train_file, tiny_xlmr_folder):
    record = train(tiny_config(tiny_train_file, tiny_xlmr_folder, validation=str(tiny_train_file), max_steps=6,
                               eval_steps=2, learning_rate=5e-3), tmp_path / "run", show_progress=False)
    losses = {entry["step"]: entry["eval_loss"] for entry in record["eval_loss"]}
    best_step = min(losses, key=losses.get)
    assert sorted(losses) == [2, 4, 6] and record["best_checkpoint"] == f"checkpoints/checkpoint-{best_step}"
    final, best = weights(tmp_path / "run" / "model"), weights(tmp_path / "run" / record["best_checkpoint"])
    assert all(torch.equal(final[name], best[name]) for name in best)


class RisingValidationLoss(TrainerCallback):
    """Replaces each validation loss with 1, 2, 3, …: every validation after the first is worse."""

    def __init__(self) -> None:
        self.calls = 0

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.calls += 1
        metrics["eval_loss"] = float(self.calls)


def test_early_stopping_stops_after_patience_and_keeps_the_best(tmp_path, tiny_train_file, tiny_xlmr_folder):
    """Patience 1, a validation every 2 steps that only gets worse: the run stops at step 4 of 10 and its model
    is checkpoint 2's."""
    record = train(tiny_config(tiny_train_file, tiny_xlmr_folder, validation=str(tiny_train_file), max_steps=10,
                               eval_steps=2, patience=1), tmp_path / "run", show_progress=False,
                   callbacks=[RisingValidationLoss()])
    assert record["steps"] == 4 and record["early_stopped"] and record["best_eval_loss"] == 1.0
    assert record["best_checkpoint"] == "checkpoints/checkpoint-2"  # relative to the run folder
    final, best = weights(tmp_path / "run" / "model"), weights(tmp_path / "run" / record["best_checkpoint"])
    last = weights(tmp_path / "run" / "checkpoints" / "checkpoint-4")
    assert all(torch.equal(final[name], best[name]) for name in best)
    assert not all(torch.equal(final[name], last[name]) for name in last)


def test_checkpoints_do_not_carry_the_training_data(tmp_path, tiny_train_file, tiny_xlmr_folder):
    """The trainer pickles its arguments (the sampler factory included) into every checkpoint."""
    train(tiny_config(tiny_train_file, tiny_xlmr_folder, max_steps=4), tmp_path / "run", show_progress=False)
    pickled = (tmp_path / "run" / "checkpoints" / "checkpoint-4" / "training_args.bin").read_bytes()
    assert b"question 17 in de" not in pickled and len(pickled) < 20_000


def test_cli_trains_the_offline_model_on_real_data_and_the_result_evaluates(tmp_path, capsys):
    """The smoke run CI makes: 2 real steps of hybrid batches on MLQA-R with SQuADShifts validation, then the
    trained folder goes through the evaluation command on a small XQuAD-R subset."""
    run = tmp_path / "run"
    assert main(["train", "--train", "mlqa-r", "--strategy", "hybrid", "--max-steps", "2", "--batch-size", "8",
                 "--max-length", "48", "--eval-steps", "2", "--validation-size", "16", "--freeze-word-embeddings",
                 "--output", str(run)]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "finished" and record["data"]["sources"][0]["items"] == 1148
    assert len(record["train_loss"]) == 2 and all(np.isfinite(e["loss"]) for e in record["train_loss"])
    assert record["eval_loss"][0]["step"] == 2 and record["data"]["validation"]["pairs"] == 16
    assert sum(record["batches"]["strategy"].values()) == 2
    evaluated = tmp_path / "eval"
    assert main(["evaluate", "--model", str(run / "model"), "--dataset", "xquad-r", "--languages", "en", "de",
                 "--max-question-ids", "20", "--output", str(evaluated)]) == 0
    provenance = json.loads((evaluated / "provenance.json").read_text())
    spec = provenance["config"]["model_spec"]
    assert spec["query_prompt"] == "query: "  # E5 prompts travel with the model
    assert spec["max_seq_length"] == 48 and spec["name"] == "run"  # its training length; named after its run
    assert (evaluated / "tidy.csv").read_text().count("\n") > 10


@pytest.mark.parametrize("strategy", ["mono", "cross"])
def test_cli_trains_the_pure_strategies_on_real_data(tmp_path, strategy):
    """One real step of X-X-mono or X-Y batches on XQuAD-R; the record shows only that strategy."""
    run = tmp_path / "run"
    assert main(["train", "--train", "xquad-r", "--strategy", strategy, "--max-steps", "1", "--batch-size", "8",
                 "--max-length", "32", "--validation", "none", "--freeze-word-embeddings", "--output", str(run)]) == 0
    record = json.loads((run / "run.json").read_text())
    assert record["batches"]["strategy"] == {strategy: 1} and record["config"]["patience"] is None
    assert record["data"]["sources"][0]["items"] == 1190 and (run / "model" / "model.safetensors").is_file()


def test_cli_train_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--strategy", "cross", "--alpha", "0.2", "--output", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "alpha applies to the hybrid strategy only" in error
    assert not (tmp_path / "x").exists()


def test_mmarco_trains_from_a_local_copy_in_the_hub_layout(tmp_path, tiny_train_file, tiny_xlmr_folder, capsys):
    """``--train mmarco`` reads mMARCO's files in the paper's 7 languages (here a local folder in the hub's
    layout), with its hard negatives; ``mmarco:de,en`` picks languages and mixes by size with a user's JSONL; a
    language mMARCO lacks is a one-line error."""
    from hybridir.data.parallel import MMARCO_LANGUAGES
    from hybridir.training.config import MMARCO_PAPER_LANGUAGES

    source = mmarco_copy(tmp_path / "mmarco", n_queries=24,
                         languages=[MMARCO_LANGUAGES[lang] for lang in MMARCO_PAPER_LANGUAGES])
    base = ["train", "--model", str(tiny_xlmr_folder), "--mmarco-source", str(source), "--max-length", "16",
            "--batch-size", "4", "--validation", "none", "--patience", "none"]
    assert main([*base, "--train", "mmarco:de,xx", "--output", str(tmp_path / "bad")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "give distinct mMARCO languages after the colon" in error
    assert main([*base, "--train", "mmarco", "--mmarco-queries", "all", "--max-steps", "3", "--strategy", "cross",
                 "--output", str(tmp_path / "run")]) == 0
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["batches"]["source"] == {"mmarco": 3} and record["steps"] == 3
    assert record["data"]["sources"][0]["languages"] == sorted(MMARCO_PAPER_LANGUAGES)
    assert record["data"]["sources"][0]["items"] == 24 and record["data"]["slots"] == 24 * 7
    assert record["config"]["train"] == ["mmarco"] and record["config"]["mmarco_source"] == str(source)
    assert record["config"]["mmarco_queries"] is None
    # 24 mMARCO items (one triple per query) beside the JSONL's 40: mMARCO takes 24/64 of batches by size
    mixed = TrainingConfig(train=["mmarco:de,en", str(tiny_train_file)], mmarco_source=str(source))
    from hybridir.training.data import load_training_sources
    from hybridir.sampling.pairs import build_pair_dataset
    from hybridir.sampling.samplers import LanguageBatchSampler

    with pytest.warns(UserWarning, match="training without the hard negatives of mmarco: the other sources"):
        sources = load_training_sources(mixed)
    assert [s.name for s in sources] == ["mmarco", "tiny"] and not sources[0].has_negatives
    assert sources[0].rows.cache_files, "mMARCO is read once into the Arrow cache, then memory-mapped"
    dataset, table = build_pair_dataset(sources)
    assert table.sources == ("mmarco", "tiny") and table.n_items == 64
    sampler = LanguageBatchSampler(dataset, 4, table=table, strategy="hybrid", seed=0)
    assert 0 < sampler.make_up(64)["source"]["mmarco"] < 64
    dataset, table = build_pair_dataset(load_training_sources(replace(mixed, train=["mmarco:de,en"])))
    assert table.n_items == 24 and table.languages == ("de", "en")
    sampler = LanguageBatchSampler(dataset, 4, table=table, strategy="mono", seed=0)
    batch = dataset.__getitems__(next(iter(sampler)))
    assert all(row["negative"].split()[0] == row["passage"].split()[0] for row in batch)  # negative in its language
