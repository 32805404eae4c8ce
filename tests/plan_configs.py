"""The LAReQA sampler settings whose batch plans are pinned by tests/data/lareqa_plan_digests.json.

The digests were written by the sampler that materialised one dataset row per (item, query language,
passage language) (commit f02cce6); the compact sampler must reproduce them bit for bit, so the committed
training runs stay reproducible. Each entry: (training sources, batch size, sampler options).
"""

EPOCHS = 3  # several epochs: pools run out and start new passes inside them

CONFIGS = {
    **{f"{source}-{strategy}-s{seed}": ([source], 32, {"strategy": strategy, "seed": seed})
       for source in ("mlqa-r", "xquad-r") for strategy in ("mono", "cross", "hybrid", "standard")
       for seed in (0, 7)},
    "mlqa-r-hybrid-a0.25": (["mlqa-r"], 32, {"strategy": "hybrid", "alpha": 0.25}),
    "mlqa-r-hybrid-balanced": (["mlqa-r"], 32, {"strategy": "hybrid", "cross_pairs": "balanced"}),
    "mlqa-r-cross-balanced-s3": (["mlqa-r"], 32, {"strategy": "cross", "cross_pairs": "balanced", "seed": 3}),
    "mlqa-r-hybrid-stratified": (["mlqa-r"], 32, {"strategy": "hybrid", "mono_draw": "stratified"}),
    "xquad-r-hybrid-b64": (["xquad-r"], 64, {"strategy": "hybrid"}),
    "mlqa-r-hybrid-ranks2": (["mlqa-r"], 16, {"strategy": "hybrid", "world_size": 2}),
    "mlqa-r-hybrid-pooled2": (["mlqa-r"], 16, {"strategy": "hybrid", "world_size": 2, "pooled_ranks": True}),
    "mlqa-r-standard-pooled2": (["mlqa-r"], 16, {"strategy": "standard", "world_size": 2, "pooled_ranks": True}),
    "both-hybrid": (["mlqa-r", "xquad-r"], 32, {"strategy": "hybrid"}),
    "both-hybrid-t2": (["mlqa-r", "xquad-r"], 32, {"strategy": "hybrid", "temperature": 2.0, "seed": 5}),
    "both-standard": (["mlqa-r", "xquad-r"], 32, {"strategy": "standard"}),
}
