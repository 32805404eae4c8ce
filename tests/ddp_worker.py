"""Worker that ``tests/test_training_ddp.py`` launches under ``torchrun`` (not a test module).

Each ``--phase NAME:GATHER:MAX_STEPS:EVAL_STEPS:STOP_AT`` calls
:func:`hybridir.training.trainer.train` on the ``--train-file`` JSONL with the ``--model-dir``
folder (hybrid strategy, batch size ``--batch-size``, no validation,
``gather_across_devices=GATHER``, ``max_steps=MAX_STEPS``, ``eval_steps=EVAL_STEPS``, which is
also the checkpoint interval). Every rank trains into the one output folder ``OUT_DIR/NAME/run``,
as ``hybridir train`` under torchrun would. With ``STOP_AT`` > 0 a trainer callback stops the
first call after step ``STOP_AT`` (the config stays the same), and a second call
``train(..., resume=True)`` continues the run from its last checkpoint in the same folder.

Meanwhile it records, on this rank, what the loss receives at every step (the decoded texts of
each column, prompts included), the global step at the end of every step, and the samplers the
factory builds (their world size, group size, length and last epoch), and writes them to
``OUT_DIR/NAME/rank<RANK>.json`` once the phase's ``train()`` has returned, and those of the
resumed call to ``OUT_DIR/NAME/rank<RANK>.resumed.json``. Nothing is asserted here: the test
reads and checks the files.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main() -> None:
    # No option may be a prefix of a torchrun option: torchrun's argparse would take it (--run → --run-path).
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True, help="a model folder (the tiny XLM-R of the tests)")
    parser.add_argument("--train-file", required=True, help="the training JSONL")
    parser.add_argument("--out-dir", required=True, help="folder for the observations and the runs")
    parser.add_argument("--phase", action="append", required=True,
                        help="NAME:GATHER(0|1):MAX_STEPS:EVAL_STEPS:STOP_AT (0 = no stop), repeatable")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rank = int(os.environ["RANK"])

    import torch.distributed as dist
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import AutoTokenizer, TrainerCallback

    from interruption import StopAt  # tests/, this script's folder, is on sys.path

    from hybridir.sampling.samplers import LanguageBatchSampler, LanguageSamplerFactory
    from hybridir.training.config import TrainingConfig
    from hybridir.training.trainer import train

    class TrainerView(TrainerCallback):
        """How the trainer itself sees the run: its world size, the wrappers around the batch sampler, its steps."""

        def __init__(self) -> None:
            self.seen: dict = {}

        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            chain, sampler = [], getattr(train_dataloader, "batch_sampler", None)
            while sampler is not None and len(chain) < 5:
                chain.append(type(sampler).__name__)
                sampler = getattr(sampler, "batch_sampler", None)
            self.seen = {"args_world_size": args.world_size, "process_index": args.process_index,
                         "parallel_mode": str(args.parallel_mode), "batch_sampler_chain": chain, "epochs_begun": [],
                         "global_steps": []}

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.seen["epochs_begun"].append({"epoch": state.epoch, "global_step": state.global_step})

        def on_step_end(self, args, state, control, **kwargs):
            self.seen["global_steps"].append(state.global_step)

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    steps: list[dict] = []  # one entry per loss call = one optimiser step (no accumulation, no evaluation)
    samplers: list = []

    original_forward = MultipleNegativesRankingLoss.forward

    def recording_forward(self, sentence_features, labels):
        features = list(sentence_features)
        steps.append({"gather_across_devices": bool(self.gather_across_devices),
                      "sampler_epoch": samplers[-1].epoch if samplers else None,
                      "columns": [tokenizer.batch_decode(f["input_ids"].tolist(), skip_special_tokens=True)
                                  for f in features]})
        return original_forward(self, features, labels)

    original_call = LanguageSamplerFactory.__call__

    def recording_call(self, dataset, *rest, **options):
        sampler = original_call(self, dataset, *rest, **options)
        samplers.append(sampler)
        return sampler

    MultipleNegativesRankingLoss.forward = recording_forward
    LanguageSamplerFactory.__call__ = recording_call

    def observe(config: TrainingConfig, run: Path, file: Path, resume: bool, extra: list) -> None:
        """One ``train()`` call, its observations written to ``file``."""
        steps.clear()
        samplers.clear()
        view = TrainerView()
        record = train(config, run, resume=resume, show_progress=False, callbacks=[view, *extra])
        observed = {
            "rank": rank,
            "world_size": dist.get_world_size() if dist.is_initialized() else 1,
            "backend": dist.get_backend() if dist.is_initialized() else None,
            "trainer": view.seen,
            "steps": steps,
            "samplers": [{"language_sampler": isinstance(s, LanguageBatchSampler),
                          "world_size": getattr(s, "world_size", None), "group_size": getattr(s, "group_size", None),
                          "length": len(s), "epoch": getattr(s, "epoch", None), "seed": getattr(s, "seed", None),
                          "batch_size": s.batch_size} for s in samplers],
            "record": {"status": record["status"], "steps": record["steps"], "batches": record["batches"]},
        }
        file.write_text(json.dumps(observed, indent=1, ensure_ascii=False) + "\n")
        if dist.is_initialized():
            dist.barrier()

    for spec in args.phase:
        name, gather, max_steps, eval_steps, stop_at = spec.split(":")
        folder = Path(args.out_dir) / name
        folder.mkdir(parents=True, exist_ok=True)
        config = TrainingConfig(train=[args.train_file], strategy="hybrid", model=args.model_dir, seed=args.seed,
                                max_steps=int(max_steps), batch_size=args.batch_size, warmup_ratio=0.0,
                                validation="none", patience=None, gather_across_devices=gather == "1",
                                max_length=32, eval_steps=int(eval_steps))
        run = folder / "run"
        stop = [StopAt(int(stop_at))] if int(stop_at) else []
        observe(config, run, folder / f"rank{rank}.json", resume=False, extra=stop)
        if stop:
            observe(config, run, folder / f"rank{rank}.resumed.json", resume=True, extra=[])


if __name__ == "__main__":
    main()
