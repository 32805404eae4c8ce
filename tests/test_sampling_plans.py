"""The compact sampler reproduces, bit for bit, the LAReQA batch plans of the sampler it replaced.

The digests in ``tests/data/lareqa_plan_digests.json`` were written by the sampler that materialised one dataset
row per (item, query language, passage language) (commit f02cce6), for the settings of ``plan_configs.py``; every
batch's strategy, source, language and (id, query language, passage language) pairs enter them, in order. Equal
digests mean the committed training runs train on the same batches as when they were made.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from plan_configs import CONFIGS, EPOCHS  # tests/ is on sys.path

from hybridir.data.parallel import lareqa_parallel
from hybridir.sampling import LanguageBatchSampler, build_pair_dataset

DIGESTS = json.loads((Path(__file__).parent / "data" / "lareqa_plan_digests.json").read_text())


@pytest.fixture(scope="module")
def built():
    cache = {}

    def build(sources: list[str]):
        if tuple(sources) not in cache:
            cache[tuple(sources)] = build_pair_dataset([lareqa_parallel(source) for source in sources])
        return cache[tuple(sources)]

    return build


def plan_digest(sampler: LanguageBatchSampler) -> tuple[int, str]:
    table = sampler.table
    digest, batches = hashlib.sha256(), 0
    for epoch in range(EPOCHS):
        for batch in sampler.plan(epoch):
            language = "-" if batch.language is None else table.languages[batch.language]
            pairs = table.describe(batch.pairs).itertuples(index=False, name=None)
            line = f"{batch.strategy}|{table.sources[batch.source]}|{language}|" + ";".join(
                f"{source},{item},{query},{passage}" for source, item, query, passage in pairs)
            digest.update(line.encode() + b"\n")
            batches += 1
    return batches, digest.hexdigest()


def test_every_pinned_setting_has_a_digest():
    assert set(DIGESTS) == set(CONFIGS)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_plan_equals_the_row_sampler_s(name, built):
    sources, batch_size, options = CONFIGS[name]
    dataset, table = built(sources)
    batches, digest = plan_digest(LanguageBatchSampler(dataset, batch_size, table=table, **options))
    assert (batches, digest) == (DIGESTS[name]["batches"], DIGESTS[name]["sha256"])
