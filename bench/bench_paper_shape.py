"""Benchmark: the `paper` preset's shape on a GPU, where there is a GPU but no model hub.

    HYBRIDIR_DATA_DIR=../shared/data python bench/bench_paper_shape.py | tee results/bench/bench_paper_shape.txt

An XLM-R-base-sized encoder (xlm-roberta-base's configuration, random weights: the hub is out of
reach) with the real XLM-R tokenizer (multilingual-e5-small's tokenizer.json: the same 250,002-piece
SentencePiece model), mean pooling, batch 100, max length 256, bf16 autocast, trained on MLQA-R's
pairs, in one run:

(a) ``hybridir.training.train`` with the preset's settings: the hybrid sampler, every SQuADShifts
    new_wiki validation pair, a checkpoint at the end, the XQuAD-R checkpoint curve (200 ids); on a
    GPU it tokenises in worker processes and fuses AdamW (``device_loop_settings``);
(b) a bare loop over the same model: uniform random batches, sentence-transformers' tokenisation and
    MNRL loss, AdamW, gradient clipping at 1.0 (as the trainer), no trainer and no sampler;
(c) one full XQuAD-R LAReQA evaluation (every question and candidate, batch 256, bf16 weights).

A step is the median interval between consecutive step ends after ``--warmup`` steps (so it covers
fetching, collating and tokenising the batch); (a) and (b) alternate over ``--rounds`` rounds, and
the first round also carries the process's CUDA and cuDNN warm-up (read the rounds' lines).
Peak GPU memory is ``torch.cuda.max_memory_allocated`` over each run. The paper preset's expected
time follows from these figures and its stage list (no timing is extrapolated from a CPU).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from timed_training import StepClock  # same folder

from hybridir.data.lareqa import load_lareqa, subset_lareqa
from hybridir.data.parallel import lareqa_parallel
from hybridir.evaluation.run import EvaluationConfig, run_evaluation
from hybridir.experiment.runner import stages
from hybridir.models.spec import load_model, resolve_model
from hybridir.paths import data_dir
from hybridir.presets import PRESETS
from hybridir.provenance import hardware, versions
from hybridir.sampling.pairs import build_pair_dataset
from hybridir.training.callbacks import RetrievalCurveCallback
from hybridir.training.trainer import train

PAPER = PRESETS["paper"].experiment
# xlm-roberta-base's config.json (hidden 768, 12 layers, 12 heads, FFN 3072, 514 positions, 250,002 pieces).
XLMR_BASE = dict(vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                 pad_token_id=1, bos_token_id=0, eos_token_id=2)
# A plumbing check on a CPU (--tiny): same code, a model small enough to step in a second.
TINY = XLMR_BASE | dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)


def random_xlmr_folder(folder: Path, shape: dict) -> Path:
    """A transformers folder, the hub's layout: the config's random weights and the XLM-R tokenizer."""
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    XLMRobertaModel(XLMRobertaConfig(**shape), add_pooling_layer=False).save_pretrained(folder)
    if data_dir() is None:
        raise SystemExit("set HYBRIDIR_DATA_DIR to the shared data folder (it holds the XLM-R tokenizer.json)")
    tokenizer = data_dir() / "models" / "multilingual-e5-small" / "tokenizer.json"
    PreTrainedTokenizerFast(tokenizer_file=str(tokenizer), model_max_length=512, bos_token="<s>", eos_token="</s>",
                            sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                            mask_token="<mask>").save_pretrained(folder)
    return folder


class Clock(StepClock):
    """The benchmarks' step clock, with the time of each validation and of each save after its step."""

    def __init__(self) -> None:
        super().__init__()
        self.validations: list[float] = []
        self.saves: list[float] = []

    def on_evaluate(self, args, state, control, **kwargs) -> None:
        self.validations.append(time.perf_counter() - self.stamps[-1])

    def on_save(self, args, state, control, **kwargs) -> None:
        # From the last step: the validation, the checkpoint and the curve (a callback before this one).
        self.saves.append(time.perf_counter() - self.stamps[-1] - self.validations[-1])


def tokenised_batch(model, spec, queries: list[str], passages: list[str], rows, device: str) -> list[dict]:
    """Pairs ``rows`` as the MNRL loss takes them: queries and passages tokenised with their prompts, on
    ``device``."""
    return [{k: v.to(device) if torch.is_tensor(v) else v
             for k, v in model.preprocess([texts[i] for i in rows], prompt=prompt).items()}
            for texts, prompt in ((queries, spec.query_prompt), (passages, spec.passage_prompt))]


def trainer_run(folder: Path, steps: int, curve, work: Path) -> tuple[Clock, float, list[float], float]:
    """(a): the preset's training config, shortened to ``steps`` with one validation and save at the end;
    its clock, peak memory, first losses and the seconds of the curve's evaluation at the end."""
    from dataclasses import replace

    config = replace(PAPER.training, model_path=str(folder), max_steps=steps, eval_steps=steps, precision="bf16")
    clock = Clock()
    curve_callback = RetrievalCurveCallback(curve, work / "curve.csv", precision="bf16", batch_size=256)
    _reset_peak()
    record = train(config, work / "run", show_progress=False, callbacks=[curve_callback, clock])
    last_curve = float((work / "curve.csv").read_text().splitlines()[-1].rsplit(",", 1)[1])
    return clock, _peak_gib(), [h["loss"] for h in record["train_loss"]][:3], last_curve


def bare_run(folder: Path, dataset, steps: int) -> tuple[list[float], float]:
    """(b): the same model, tokenisation and loss in a plain loop."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    spec = resolve_model("xlm-roberta-base", path=folder, max_seq_length=PAPER.training.max_length)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(spec).to(device)
    loss_fn = MultipleNegativesRankingLoss(model, scale=PAPER.training.scale)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PAPER.training.learning_rate,
                                  weight_decay=PAPER.training.weight_decay)
    queries, passages = dataset["query"], dataset["passage"]
    generator = np.random.default_rng(0)
    _reset_peak()
    stamps = [time.perf_counter()]
    for _ in range(steps):
        rows = generator.choice(len(queries), PAPER.training.batch_size, replace=False)
        features = tokenised_batch(model, spec, queries, passages, rows, device)
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = loss_fn(features, None)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # the trainer reads every step's loss too (logging_steps=1)
        stamps.append(time.perf_counter())
    peak = _peak_gib()
    del model, optimizer, loss_fn
    return stamps, peak


def _reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")


def _free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def expected_preset_hours(step: float, validation: float, save: float, curve: float, evaluation: dict) -> str:
    """The paper preset's time from the measured pieces: every training stage runs its 3000 steps (no early
    stop), validates and saves every 100 steps (lead runs also evaluate the curve), every LAReQA evaluation
    and BEIR stage encodes its dataset."""
    lines, total = [], 0.0
    checkpoints = PAPER.training.max_steps // PAPER.training.eval_steps
    planned = stages(PAPER)
    for stage in planned:
        if stage.kind == "train":
            curve_cost = curve if stage.direction == PAPER.directions[0] else 0.0
            total += PAPER.training.max_steps * step + checkpoints * (validation + save + curve_cost)
        elif stage.kind == "evaluate" and stage.evaluation.dataset in evaluation:
            total += evaluation[stage.evaluation.dataset]
        else:  # BEIR SciFact: 5,183 documents + 300 queries, about a third of XQuAD-R's texts
            total += evaluation["xquad-r"] / 3
    counts = {kind: sum(s.kind == kind for s in planned) for kind in ("train", "evaluate", "beir")}
    lines.append(f"paper preset: {counts['train']} training stages × {PAPER.training.max_steps} steps, "
                 f"{counts['evaluate']} LAReQA evaluations, {counts['beir']} BEIR stages")
    lines.append(f"expected time on this GPU (no early stop): {total / 3600:.1f} h")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="a 2-layer 64-wide model: a plumbing check on a CPU")
    args = parser.parse_args()
    if args.warmup >= args.steps:
        parser.error(f"--warmup ({args.warmup}) must be below --steps ({args.steps})")

    print(f"hardware: {hardware()}\nversions: {versions()} torch {torch.__version__}\n", flush=True)
    dataset, _ = build_pair_dataset([lareqa_parallel("mlqa-r")])
    xquad, mlqa = load_lareqa("xquad-r"), load_lareqa("mlqa-r")
    curve = subset_lareqa(xquad, PAPER.curve_question_ids)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        folder = random_xlmr_folder(work / "xlmr-base-random", TINY if args.tiny else XLMR_BASE)
        params = sum(np.prod(t.shape) for t in load_model(resolve_model("xlm-roberta-base", path=folder))
                     .parameters()) / 1e6
        print(f"model: XLM-R-base shape{' (TINY)' if args.tiny else ''}, {params:.0f} M parameters, random "
              f"weights, XLM-R tokenizer; batch {PAPER.training.batch_size}, max length {PAPER.training.max_length}, "
              f"bf16 autocast; MLQA-R pairs: {len(dataset)} rows\n", flush=True)

        ours, bare, peaks, validations, saves, curves = [], [], {"ours": [], "bare": []}, [], [], []
        for round_ in range(args.rounds):
            clock, peak, first_losses, curve_seconds = trainer_run(folder, args.steps, curve, work / f"ours-{round_}")
            ours += list(np.diff(clock.stamps)[args.warmup:])
            peaks["ours"].append(peak)
            validations += clock.validations
            curves.append(curve_seconds)
            saves.append(clock.saves[-1] - curve_seconds)
            _free()
            stamps, peak = bare_run(folder, dataset, args.steps)
            bare += list(np.diff(stamps)[args.warmup:])
            peaks["bare"].append(peak)
            _free()
            print(f"round {round_ + 1}: hybridir step {statistics.median(np.diff(clock.stamps)[args.warmup:]):.4f} s, "
                  f"bare step {statistics.median(np.diff(stamps)[args.warmup:]):.4f} s; first losses "
                  f"{' '.join(f'{x:.3f}' for x in first_losses)}", flush=True)

        began = time.perf_counter()
        evaluation_config = EvaluationConfig(model="xlm-roberta-base", model_path=str(folder), dataset="xquad-r",
                                             batch_size=256, precision="bf16", per_query=True)
        run_evaluation(evaluation_config, work / "evaluation")
        xquad_seconds = time.perf_counter() - began
        xquad_texts = len(xquad.questions) + len(xquad.candidates)
        mlqa_seconds = xquad_seconds * (len(mlqa.questions) + len(mlqa.candidates)) / xquad_texts

    step_ours, step_bare = statistics.median(ours), statistics.median(bare)
    print(f"\n(a) hybridir train, median step:   {step_ours:.4f} s  (of {len(ours)}; peak {max(peaks['ours']):.1f} GiB)")
    print(f"(b) bare loop, median step:        {step_bare:.4f} s  (of {len(bare)}; peak {max(peaks['bare']):.1f} GiB)")
    print(f"(a) / (b):                         {step_ours / step_bare:.3f}")
    print(f"validation pass (every new_wiki pair): {statistics.median(validations):.1f} s")
    print(f"checkpoint save:                   {statistics.median(saves):.1f} s")
    print(f"curve evaluation (200 XQuAD-R ids): {statistics.median(curves):.1f} s")
    print(f"(c) full XQuAD-R evaluation:       {xquad_seconds:.1f} s for {xquad_texts} texts "
          f"({xquad_texts / xquad_seconds:.0f} texts/s, model load included)")
    print(f"3000 steps of (a):                 {3000 * step_ours / 60:.1f} min")
    print(expected_preset_hours(step_ours, statistics.median(validations), statistics.median(saves),
                                statistics.median(curves), {"xquad-r": xquad_seconds, "mlqa-r": mlqa_seconds}))


if __name__ == "__main__":
    main()
