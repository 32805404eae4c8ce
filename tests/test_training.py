"""The training run: config checks, output safety, exact resume, a stop on a NaN loss, a real smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from hybridir.cli import main
from hybridir.training.callbacks import NonFiniteLossError
from hybridir.training.config import TrainingConfig
from hybridir.training.trainer import train

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


class StopAt(TrainerCallback):
    """Ends training after ``step`` steps, as an interruption would (the checkpoint at ``step`` is saved)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control


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
    changed = weights(Path(tiny_xlmr_folder)) if (Path(tiny_xlmr_folder) / "model.safetensors").exists() else None
    for name, tensor in reference.items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=1e-6, msg=name)
    if changed is not None:  # the run did train: the weights moved from the initial ones
        moved = [name for name in changed if name in reference and not torch.equal(changed[name], reference[name])]
        assert moved
    losses = {entry["step"]: entry["loss"] for entry in whole["train_loss"]}
    resumed_losses = {entry["step"]: entry["loss"] for entry in resumed["train_loss"]}
    for step in (13, 14):
        assert resumed_losses[step] == pytest.approx(losses[step], abs=1e-6)


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_train_file, tiny_xlmr_folder,
                                                            monkeypatch):
    """From step 6 on the loss is NaN: the run stops there, says so, saves nothing after step 4."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    forward, calls = MultipleNegativesRankingLoss.forward, {"n": 0}

    def poisoned(self, *args, **kwargs):
        calls["n"] += 1
        loss = forward(self, *args, **kwargs)
        return loss * float("nan") if calls["n"] >= 6 else loss

    monkeypatch.setattr(MultipleNegativesRankingLoss, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"became nan at step 6.*checkpoint-4"):
        train(tiny_config(tiny_train_file, tiny_xlmr_folder), tmp_path / "run", show_progress=False)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["checkpoint-4"]
    assert not (tmp_path / "run" / "model").exists()
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "diverged" and record["steps"] == 6


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
    with pytest.raises(ValueError, match=r"different config .*learning_rate"):
        train(tiny_config(tiny_train_file, tiny_xlmr_folder, max_steps=4, learning_rate=1e-4), tmp_path / "run",
              resume=True, show_progress=False)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"strategy": "mixed"}, "unknown strategy 'mixed'"),
    ({"strategy": "mono", "alpha": 0.3}, "alpha applies to the hybrid strategy only"),
    ({"alpha": 1.2}, r"must lie in \[0, 1\]"),
    ({"train": ["squad"]}, "neither xquad-r nor mlqa-r nor a .jsonl file"),
    ({"train": ["missing.jsonl"]}, "does not exist"),
    ({"train": ["mlqa-r", "mlqa-r"]}, "names a source twice"),
    ({"precision": "fp8"}, "unknown precision 'fp8'"),
    ({"max_steps": 0}, "max_steps must be a positive integer"),
    ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
    ({"warmup_ratio": 1.0}, r"warmup_ratio is a fraction"),
    ({"validation": "squad"}, "use squadshifts, squadshifts:NAME, none or a .jsonl file"),
    ({"validation": "none", "patience": 3}, "early stopping needs validation data"),
    ({"batch_size": 1}, "batch_size must be an integer of at least 2"),
])
def test_config_errors_name_the_fix(overrides, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        TrainingConfig(**overrides)


def test_restricting_to_a_language_the_data_lacks_is_an_error(tmp_path):
    from hybridir.training.data import load_training_sources

    with pytest.raises(ValueError, match="has no pairs in fr"):
        load_training_sources(TrainingConfig(train=["mlqa-r"], train_languages=["en", "fr"]))


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
    assert provenance["config"]["model_spec"]["query_prompt"] == "query: "  # E5 prompts travel with the model
    assert (evaluated / "tidy.csv").read_text().count("\n") > 10


def test_cli_train_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--strategy", "cross", "--alpha", "0.2", "--output", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "alpha applies to the hybrid strategy only" in error
    assert not (tmp_path / "x").exists()
