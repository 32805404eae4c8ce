"""The language batch sampler and ``train()`` under real DDP: ``torchrun``, 2 CPU ranks, gloo.

One ``torchrun --nproc_per_node 2`` launch of ``tests/ddp_worker.py`` (about 1.5 min on two cores)
trains a random 2-layer XLM-R on a tiny JSONL whose every text names its id and language
("q 7 de" / "p 7 de"); the worker records the decoded texts the loss receives at every step on
each rank. Every phase trains into one output folder shared by both ranks, as ``hybridir train``
under torchrun would. The checks:

1. every batch of every rank is composed as its strategy says: mono batches in one language,
   X-Y batches with query language ≠ passage language for every pair, no id twice;
2. the ranks never see the same batch, and together they see exactly the sampler's planned
   sequence round-robin (rank r gets batches r, r + 2, … of ``plan(0)`` then ``plan(1)``, 2
   steps an epoch): the factory built the sampler for 2 ranks, and the new epoch reached it
   under accelerate's ``BatchSamplerShard`` (epoch 1 is ``plan(1)``, not ``plan(0)`` again);
3. with ``gather_across_devices=True`` the two batches of one step (one pooled batch for the
   loss) are both mono in one language or both X-Y, with 8 distinct ids;
4. ``train()`` completes on both ranks in the shared folder, and only rank 0 claims it
   (``config.json``) and writes ``model/`` and ``run.json``;
5. a mid-epoch resume in epoch 1 (stopped after step 3 of 4, a checkpoint every step, then
   ``train(..., resume=True)``) trains step 4 on batches 2 and 3 of ``plan(1)``, not of
   ``plan(0)``: there the sampler sits under ``SkipBatchSampler`` → ``BatchSamplerShard``, out of
   the trainer's ``set_epoch`` reach, and only ``SamplerEpochCallback`` moves it to epoch 1. Its
   final weights equal those of the same run uninterrupted.

The launch sets no accelerate option: ``train()`` itself asks for CPU DDP (gloo) when there is no
GPU and WORLD_SIZE > 1. ``CUDA_VISIBLE_DEVICES=""`` keeps it on the CPU where a GPU is present.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # one torchrun launch for the whole module: ~1.5 min on 2 CPU cores

WORKER = Path(__file__).with_name("ddp_worker.py")
WORLD_SIZE, BATCH_SIZE, STEPS, SEED = 2, 4, 4, 0
LANGUAGES = ("de", "en", "fr")
N_IDS = 16  # 16 items: one epoch is 4 batches = 2 steps, so 4 steps cover epochs 0 and 1
STOP_AT = 3  # the interrupted run stops after step 3 of 4: mid-epoch 1
# name: (gather_across_devices, eval_steps = checkpoint interval, stop after this step and resume; 0 = never).
# "uninterrupted" and "interrupted" differ only in the stop, which comes through a callback: one config.
PHASES = {"pooled": (True, 1000, 0), "unpooled": (False, 1000, 0),
          "uninterrupted": (True, 1, 0), "interrupted": (True, 1, STOP_AT)}
LAUNCH_TIMEOUT_S = 480  # ~1.5 min normally; generous for a loaded machine
TEXT = re.compile(r"(?P<kind>[qp]) (?P<id>\d+) (?P<language>[a-z]{2})")


def _gloo_available() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_gloo_available()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory, tiny_xlmr_folder: Path):
    """Launch the worker once for every phase; (training file, output folder, launch log, return code)."""
    if not _gloo_available():
        pytest.skip("torch.distributed with the gloo backend is unavailable in this torch build")
    root = tmp_path_factory.mktemp("ddp")
    train_file = root / "train.jsonl"
    train_file.write_text("".join(
        json.dumps({"id": str(i), "language": lang, "query": f"q {i} {lang}", "positive": f"p {i} {lang}"}) + "\n"
        for i in range(N_IDS) for lang in LANGUAGES))
    out = root / "out"
    repo = Path(__file__).resolve().parents[1]
    env = os.environ | {
        "CUDA_VISIBLE_DEVICES": "",  # CPU and gloo even where a GPU is present
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(WORLD_SIZE),
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(WORKER),
               "--model-dir", str(tiny_xlmr_folder), "--train-file", str(train_file), "--out-dir", str(out),
               "--batch-size", str(BATCH_SIZE), "--seed", str(SEED)]
    for name, (gather, eval_steps, stop_at) in PHASES.items():
        command += ["--phase", f"{name}:{int(gather)}:{STEPS}:{eval_steps}:{stop_at}"]
    # A session of its own, so that a hung launch is killed with its workers, not only torchrun.
    with subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True) as launch:
        try:
            log, _ = launch.communicate(timeout=LAUNCH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(launch.pid, signal.SIGKILL)
            log, _ = launch.communicate()
            pytest.fail(f"torchrun did not finish in {LAUNCH_TIMEOUT_S} s; output:\n{_tail(log)}")
    return train_file, out, log, launch.returncode


def _tail(text: str | None, n: int = 6000) -> str:
    return (text or "")[-n:]


def _observations(ddp_run, phase: str, call: str = "") -> list[dict]:
    """Each rank's observations of the phase's first ``train()`` call, or with ``call="resumed"`` its resumed one."""
    _, out, log, returncode = ddp_run
    files = [out / phase / f"rank{rank}{'.' + call if call else ''}.json" for rank in range(WORLD_SIZE)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        pytest.fail(f"phase {phase!r}: no {', '.join(missing)}: train() did not finish on every rank "
                    f"(torchrun exit code {returncode}); launch output:\n{_tail(log)}")
    return [json.loads(f.read_text()) for f in files]


def _parse(text: str, prompt: str, kind: str) -> tuple[str, str]:
    """(id, language) of a decoded text: the prompt, then "q ID LANG" or "p ID LANG"."""
    assert text.startswith(prompt), f"{text!r} does not start with the prompt {prompt!r}"
    match = TEXT.fullmatch(text[len(prompt):])
    assert match and match["kind"] == kind, f"{text!r} is not '{prompt}{kind} ID LANG'"
    return match["id"], match["language"]


def _batches(observed: dict, prompts: tuple[str, str]) -> list[list[tuple[str, str, str]]]:
    """Each step's batch as (id, query language, passage language) triples."""
    batches = []
    for step in observed["steps"]:
        assert len(step["columns"]) == 2, "the loss should receive exactly a query and a passage column"
        queries, passages = step["columns"]
        batch = []
        for query, passage in zip(queries, passages, strict=True):
            q_id, q_lang = _parse(query, prompts[0], "q")
            p_id, p_lang = _parse(passage, prompts[1], "p")
            assert q_id == p_id, f"the positive of {query!r} is {passage!r}, another item's passage"
            batch.append((q_id, q_lang, p_lang))
        batches.append(batch)
    return batches


def _describe(batch: list[tuple[str, str, str]]) -> tuple[str, str | None]:
    """("mono", language) or ("cross", None); asserts check 1: the batch is one strategy, no id twice."""
    ids = [item for item, _, _ in batch]
    assert len(set(ids)) == len(ids), f"an id occurs twice in {batch}"
    if all(q == p for _, q, p in batch):
        languages = {q for _, q, _ in batch}
        assert len(languages) == 1, f"a mono batch in several languages: {batch}"
        return "mono", languages.pop()
    assert all(q != p for _, q, p in batch), f"neither mono nor X-Y: {batch}"
    return "cross", None


def _planned(train_file: Path, pooled: bool, n_batches: int) -> list[list[tuple[str, str, str]]]:
    """The first ``n_batches`` batches the sampler plans for 2 ranks, epoch after epoch, built here."""
    from hybridir.data.parallel import load_parallel_jsonl
    from hybridir.sampling.pairs import build_pair_dataset
    from hybridir.sampling.samplers import LanguageBatchSampler

    dataset, table = build_pair_dataset([load_parallel_jsonl(train_file)])
    sampler = LanguageBatchSampler(dataset, BATCH_SIZE, seed=SEED, table=table, strategy="hybrid",
                                   world_size=WORLD_SIZE, pooled_ranks=pooled)
    epochs = max(2, -(-n_batches // len(sampler)))
    planned = [[(item, q, p) for _, item, q, p in table.describe(batch.pairs).itertuples(index=False, name=None)]
               for epoch in range(epochs) for batch in sampler.plan(epoch)]
    assert planned[:len(sampler)] != planned[len(sampler):2 * len(sampler)], \
        "epochs 0 and 1 plan the same batches: the epoch-reseeding check would prove nothing"
    return planned[:n_batches]


def _prompts(folder: Path) -> tuple[str, str]:
    from hybridir.models.spec import resolve_model

    spec = resolve_model(str(folder))
    return spec.query_prompt, spec.passage_prompt


@pytest.mark.parametrize("phase", ["pooled", "unpooled"])
def test_ddp_ranks_get_the_planned_batches_round_robin(ddp_run, phase, tiny_xlmr_folder):
    """Checks 1 and 2, with and without pooled negatives."""
    train_file, _, _, _ = ddp_run
    gather = PHASES[phase][0]
    observed = _observations(ddp_run, phase)
    for rank, seen in enumerate(observed):
        assert seen["world_size"] == WORLD_SIZE and seen["backend"] == "gloo"
        trainer = seen["trainer"]
        assert trainer["args_world_size"] == WORLD_SIZE and trainer["process_index"] == rank, \
            f"the trainer is not distributed: {trainer}"
        assert trainer["batch_sampler_chain"][:2] == ["BatchSamplerShard", "LanguageBatchSampler"], trainer
        # The factory built exactly one sampler, the language one, for 2 ranks, and the trainer moved it to epoch 1.
        assert seen["samplers"] == [{"language_sampler": True, "world_size": WORLD_SIZE,
                                     "group_size": WORLD_SIZE if gather else 1, "length": 4, "epoch": 1,
                                     "seed": SEED, "batch_size": BATCH_SIZE}]
        assert [step["sampler_epoch"] for step in seen["steps"]] == [0, 0, 1, 1]
        assert all(step["gather_across_devices"] is gather for step in seen["steps"])
        assert seen["record"]["status"] == "finished" and seen["record"]["steps"] == STEPS

    batches = [_batches(seen, _prompts(tiny_xlmr_folder)) for seen in observed]
    assert [len(b) for b in batches] == [STEPS] * WORLD_SIZE
    for rank_batches in batches:
        for batch in rank_batches:
            assert len(batch) == BATCH_SIZE
            _describe(batch)  # check 1

    # Check 2: disjoint ranks, together the planned sequence, rank r gets batches r, r + 2, ...
    as_sets = [{tuple(sorted(batch)) for batch in rank_batches} for rank_batches in batches]
    assert not as_sets[0] & as_sets[1], "both ranks trained on the same batch"
    planned = _planned(train_file, pooled=gather, n_batches=STEPS * WORLD_SIZE)
    for rank in range(WORLD_SIZE):
        assert batches[rank] == planned[rank::WORLD_SIZE], f"rank {rank} did not get batches {rank}, {rank} + 2, …"

    # The run record describes the batches trained on: steps × ranks, as observed.
    strategies = [_describe(batch)[0] for rank_batches in batches for batch in rank_batches]
    made_of = observed[0]["record"]["batches"]
    assert made_of["batches"] == STEPS * WORLD_SIZE
    assert made_of["strategy"] == {s: strategies.count(s) for s in set(strategies)}


def test_ddp_pooled_step_is_one_strategy_with_distinct_ids(ddp_run, tiny_xlmr_folder):
    """Check 3: with gather_across_devices=True the 2 batches of one step form one valid batch."""
    observed = _observations(ddp_run, "pooled")
    batches = [_batches(seen, _prompts(tiny_xlmr_folder)) for seen in observed]
    kinds = set()
    for step, pair in enumerate(zip(*batches, strict=True)):
        described = {_describe(batch) for batch in pair}
        assert len(described) == 1, f"step {step}: the ranks' batches differ in strategy or language: {pair}"
        kinds |= described
        ids = [item for batch in pair for item, _, _ in batch]
        assert len(set(ids)) == len(ids) == WORLD_SIZE * BATCH_SIZE, f"step {step}: an id twice in the pool {pair}"
    assert {kind for kind, _ in kinds} == {"mono", "cross"}, "the 4 steps should include both strategies"


@pytest.mark.parametrize("phase", ["pooled", "unpooled"])
def test_ddp_train_into_one_output_folder(ddp_run, phase):
    """Check 4 as ``hybridir train`` runs under torchrun: both ranks finish, rank 0 writes model/ and run.json."""
    _, out, log, returncode = ddp_run
    assert returncode == 0, f"torchrun exited with {returncode}:\n{_tail(log, 3000)}"
    gather = PHASES[phase][0]
    observed = _observations(ddp_run, phase)
    assert [seen["record"]["status"] for seen in observed] == ["finished"] * WORLD_SIZE
    run = out / phase / "run"
    assert sorted(path.name for path in run.iterdir()) == ["checkpoints", "config.json", "model", "run.json"]
    claimed = json.loads((run / "config.json").read_text())
    assert claimed["config"]["gather_across_devices"] is gather and claimed["world_size"] == WORLD_SIZE
    assert (run / "model" / "modules.json").is_file() and (run / "model" / "model.safetensors").is_file()
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "finished" and record["steps"] == STEPS
    assert record["config"]["gather_across_devices"] is gather
    assert record["batches"]["batches"] == STEPS * WORLD_SIZE


def test_ddp_mid_epoch_resume_continues_the_epochs_plan(ddp_run, tiny_xlmr_folder):
    """Check 5: resumed after step 3 (mid-epoch 1), step 4 trains on batches 2 and 3 of ``plan(1)``."""
    train_file, out, _, _ = ddp_run
    prompts = _prompts(tiny_xlmr_folder)
    first, resumed = _observations(ddp_run, "interrupted"), _observations(ddp_run, "interrupted", "resumed")
    for rank in range(WORLD_SIZE):
        assert first[rank]["trainer"]["global_steps"] == list(range(1, STOP_AT + 1))
        assert first[rank]["record"]["status"] == "finished" and first[rank]["record"]["steps"] == STOP_AT
        assert resumed[rank]["trainer"]["args_world_size"] == WORLD_SIZE
        assert resumed[rank]["trainer"]["global_steps"] == [STEPS], "the resumed call should train step 4 only"
        assert len(resumed[rank]["steps"]) == 1, "the loss should be called once, for step 4"
        assert resumed[rank]["record"]["status"] == "finished" and resumed[rank]["record"]["steps"] == STEPS

    per_epoch = 2 * WORLD_SIZE  # batches of one epoch: 2 steps of 2 ranks
    planned = _planned(train_file, pooled=True, n_batches=2 * per_epoch)
    for rank, seen in enumerate(resumed):
        [batch] = _batches(seen, prompts)
        epoch_1, epoch_0 = planned[per_epoch + WORLD_SIZE + rank], planned[WORLD_SIZE + rank]
        assert sorted(epoch_1) != sorted(epoch_0), "batches 2 and 3 of plan(0) and plan(1) agree: proves nothing"
        assert batch != epoch_0, f"rank {rank}: the resumed step replayed plan(0): the sampler was left in epoch 0"
        assert batch == epoch_1, f"rank {rank}: the resumed step did not get batch {WORLD_SIZE + rank} of plan(1)"
        assert seen["steps"][0]["sampler_epoch"] == 1

    # Stopped and resumed, the run trained on the batches the uninterrupted one did, step by step.
    straight = _observations(ddp_run, "uninterrupted")
    for rank in range(WORLD_SIZE):
        assert (_batches(first[rank], prompts) + _batches(resumed[rank], prompts)
                == _batches(straight[rank], prompts) == planned[rank::WORLD_SIZE])
    assert (out / "interrupted" / "run" / "checkpoints" / f"checkpoint-{STOP_AT}").is_dir()
    record = json.loads((out / "interrupted" / "run" / "run.json").read_text())
    assert record["status"] == "finished" and record["steps"] == STEPS


def test_ddp_resumed_run_ends_with_the_uninterrupted_weights(ddp_run):
    """Check 5: stopped after step 3 and resumed, the final model equals the uninterrupted run's (same config)."""
    import torch
    from safetensors.torch import load_file

    _, out, log, returncode = ddp_run
    runs = {phase: out / phase / "run" for phase in ("interrupted", "uninterrupted")}
    for phase, run in runs.items():
        if not (run / "model" / "model.safetensors").is_file():
            pytest.fail(f"phase {phase!r} wrote no model (torchrun exit code {returncode}):\n{_tail(log)}")
    assert (json.loads((runs["interrupted"] / "config.json").read_text())
            == json.loads((runs["uninterrupted"] / "config.json").read_text())), "the pair should share one config"
    resumed, straight = (load_file(run / "model" / "model.safetensors") for run in runs.values())
    assert resumed.keys() == straight.keys()
    differ = {name: (resumed[name] - straight[name]).abs().max().item() for name in straight
              if not torch.allclose(resumed[name], straight[name], rtol=0, atol=1e-6)}
    worst = sorted(differ.items(), key=lambda item: -item[1])[:3]
    assert not differ, (f"{len(differ)} of {len(straight)} tensors of the resumed run differ from the uninterrupted "
                        f"run's by more than 1e-6; the largest |Δ|: {worst}")
