"""Book-facing code: tables beside the paper's, and the notebooks run on the committed results."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest

from hybridir.book import NOTEBOOKS, RESULTS
from hybridir.presets import PRESETS
from hybridir.paper import paper_summary
from hybridir.tables import (compare_means, headline, load_run, miracl_beside_the_paper, side_by_side, styled,
                             styled_by_setting, styled_with_best)

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = RESULTS / "zero-shot"


def test_side_by_side_interleaves_ours_and_the_papers():
    paper = paper_summary("LaBSE", "xquad-r", "Hybrid")
    ours = paper.loc[["en", "de", "Mean"]] * 0.5
    table = side_by_side(ours, paper, "paper")
    assert list(table.columns[:4]) == [("mono", "map", "ours"), ("mono", "map", "paper"),
                                       ("mono", "recall@1", "ours"), ("mono", "recall@1", "paper")]
    assert table.loc["de", ("mono", "map", "paper")] == pytest.approx(0.8222)
    assert table.loc["de", ("mono", "map", "ours")] == pytest.approx(0.4111)


def test_load_run_needs_a_finished_run(tmp_path):
    (tmp_path / "tidy.csv").write_text("dataset\n")
    with pytest.raises(FileNotFoundError, match="summary.csv, provenance.json"):
        load_run(tmp_path)


@pytest.mark.parametrize("name", PRESETS["full"].zero_shot)
def test_committed_results_are_complete_with_provenance(name):
    run = load_run(COMMITTED / name)
    assert run.provenance["config"] == asdict(PRESETS["full"].zero_shot[name]) | {"model_spec": run.provenance["config"]["model_spec"]}
    assert len(run.provenance["data_checksum"]) >= 64
    assert {"date", "hardware", "versions", "model_fingerprint"} <= set(run.provenance)
    assert run.tidy.value.notna().any()


def test_a_beir_summary_keeps_its_first_row():
    """BEIR summaries have one header row: their first row (the queries' language) is data, not a header."""
    summary = load_run(COMMITTED / "scifact").summary
    assert list(summary.index) == ["en", "Mean"] and list(summary.columns) == ["ndcg@10", "recall@100", "map"]


def test_styled_tables_show_counts_as_integers_fractions_rounded_and_a_dash_for_missing():
    table = pd.DataFrame({("mono", "map"): [0.81234, float("nan")], ("multi", "rank_distance"): [228.44, 12.0],
                          ("multi", "map"): [0.5, 0.25]}, index=["en", "Mean"])
    html = styled(table, "a caption").to_html()
    cells = re.findall(r'<td [^>]*>([^<]*)</td>', html)
    assert cells == ["0.812", "228.4", "0.500", "–", "12", "0.250"]
    assert "<caption>a caption</caption>" in html
    mono, multi = styled_by_setting(table, "XQuAD-R")
    assert mono.caption == "XQuAD-R — Mo." and list(multi.data.columns) == ["rank_distance", "map"]


def bold_cells(html: str) -> set[str]:
    """The cells a Styler's CSS sets in bold (``row0_col1``…)."""
    rules = re.findall(r"([^{}]+)\{\s*font-weight: bold;", html)
    return {cell for selectors in rules for cell in re.findall(r"_(row\d+_col\d+)", selectors)}


def test_the_best_strategy_of_each_source_is_bold():
    table = pd.DataFrame([[0.5, 0.7, 0.9, 0.2]], index=["en"], columns=pd.MultiIndex.from_tuples(
        [("paper", "X-Y"), ("paper", "Hybrid"), ("ours", "X-Y"), ("ours", "Hybrid")]))
    assert bold_cells(styled_with_best(table, "c").to_html()) == {"row0_col1", "row0_col2"}  # 0.7 and 0.9
    assert bold_cells(styled_with_best(table, "c", lower_is_better=True).to_html()) == {"row0_col0", "row0_col3"}


def test_miracl_tables_are_the_papers_with_our_runs_on_the_same_rows():
    ours = pd.DataFrame({"ndcg@10": [0.5, 0.45]}, index=["sw", "Mean"])
    table = miracl_beside_the_paper("ndcg@10", {"zero-shot": ours})
    assert list(table.index[:2]) == ["sw", "bn"] and list(table.index[-2:]) == ["Mean", "Median"]
    assert table.loc["sw", ("XLM-R", "X-X-mono")] == pytest.approx(0.3319)  # Table 12 as printed
    assert table.loc["sw", ("ours", "zero-shot")] == 0.5 and pd.isna(table.loc["bn", ("ours", "zero-shot")])
    with pytest.raises(ValueError, match="use ndcg@10 or recall@100"):
        miracl_beside_the_paper("map")


def test_committed_xquad_r_table_is_the_full_protocol():
    run = load_run(COMMITTED / "xquad-r")
    maps = run.tidy[run.tidy.metric == "map"]
    assert maps.setting.value_counts().to_dict() == {"cross": 110, "mono": 11, "multi": 11}
    assert (run.tidy.n_queries == 1190).all()


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_from_the_repository_root_as_a_user_types_it(notebook, tmp_path):
    """`papermill notebooks/NAME.ipynb out.ipynb` from the repository root, on the default parameters (the
    book's build runs them from notebooks/, nbmake too)."""
    output = tmp_path / f"{notebook}.ipynb"
    papermill.execute_notebook(ROOT / "notebooks" / f"{notebook}.ipynb", output, kernel_name="python3",
                               parameters={"n_resamples": 200} if notebook == "experiment" else {},
                               cwd=str(ROOT), progress_bar=False)
    executed = nbformat.read(output, as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in executed.cells]
    assert "google.colab" in executed.cells[1].source and tags[1] == ["remove-cell"]  # Colab's set-up comes first
    assert tags[2] == ["parameters"]
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors
    shown = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
             if "text/html" in o.get("data", {}) or "text/markdown" in o.get("data", {})]
    assert shown, "the notebook displayed nothing"


def test_headline_quotes_both_means():
    paper = paper_summary("XLM-R", "mlqa-r", "X-Y")
    ours = paper.copy()
    ours.loc["Mean", ("multi", "map")] = 0.25
    text = headline(ours, paper, "XLM-R X-Y")
    assert "Mul. mAP 0.250 (paper 0.508)" in text and "rank distance 227 (paper 227)" in text


def test_compare_means_lines_up_runs():
    table = compare_means({"X-X-mono": paper_summary("LaBSE", "xquad-r", "X-X-mono"),
                           "Hybrid": paper_summary("LaBSE", "xquad-r", "Hybrid")})
    assert list(table.columns) == ["X-X-mono", "Hybrid"]
    assert table.loc[("multi", "rank_distance"), "Hybrid"] == pytest.approx(221.1)
    assert table.loc[("mono", "map"), "X-X-mono"] == pytest.approx(0.8083)


BENCH_MIRACL = """# MIRACL at corpus scale: ...
# hardware: {"processor": "Some CPU", "cpu_count": 2, "device": "cpu"}
sharded     200,000 passages {"seconds": 70.0, "peak_rss_gb": 1.10, "peak_anonymous_gb": 0.9, "ndcg@10": 0.0}
in-memory   200,000 passages {"seconds": 60.0, "peak_rss_gb": 1.50, "peak_anonymous_gb": 1.2, "ndcg@10": 0.0}
sharded   1,000,000 passages {"seconds": 350.0, "peak_rss_gb": 1.21, "peak_anonymous_gb": 0.9, "ndcg@10": 0.0}
in-memory 1,000,000 passages {"seconds": 300.0, "peak_rss_gb": 3.00, "peak_anonymous_gb": 2.8, "ndcg@10": 0.0}
1 process: {"passages": 384, "seconds": 40.0, "passages_per_second": 10.0, "pool_start_seconds": null}
2 processes: {"passages": 384, "seconds": 32.0, "passages_per_second": 12.0, "pool_start_seconds": 20.0}
"""


def test_the_miracl_cost_note_reads_every_figure_from_the_benchmark_output(tmp_path):
    from hybridir.data.miracl import MIRACL_PASSAGES
    from hybridir.presets import PAPER_MIRACL_LANGUAGES
    from hybridir.tables import miracl_cost, miracl_cost_note

    bench = tmp_path / "bench.txt"
    bench.write_text(BENCH_MIRACL)
    cost = miracl_cost(bench)
    assert cost["memory"] == {("sharded", 200_000): 1.10, ("in-memory", 200_000): 1.50,
                              ("sharded", 1_000_000): 1.21, ("in-memory", 1_000_000): 3.00}
    assert cost["cpu"] == {1: 10.0, 2: 12.0} and cost["gpu"] == {}
    note = miracl_cost_note(bench)
    passages = sum(MIRACL_PASSAGES[lang] for lang in PAPER_MIRACL_LANGUAGES)
    assert f"the paper's {passages:,} passages would take {passages / 12 / 86400:,.0f} days per model" in note
    assert "(×1.10)" in note and "(×2.00)" in note and "Some CPU (2 cores)" in note and "Not measured yet" in note
    bench.write_text(BENCH_MIRACL + '1 GPU: {"passages": 1000000, "seconds": 125.0, "passages_per_second": 8000.0}; '
                                    'the paper\'s passages: 2.0 h per model\n')
    assert f"{6 * passages / 8000 / 3600:,.1f} h on 1 GPU (8,000 passages/s)" in miracl_cost_note(bench)
    bench.write_text("# nothing measured\n")
    with pytest.raises(ValueError, match="holds no memory or throughput lines of bench/bench_miracl_scale.py"):
        miracl_cost(bench)


def test_the_committed_miracl_benchmark_shows_flat_memory_for_the_sharded_search():
    from hybridir.tables import miracl_cost

    cost = miracl_cost(RESULTS / "bench" / "bench_miracl_scale.txt")
    sizes = sorted({size for _, size in cost["memory"]})
    assert len(sizes) >= 2 and sizes[-1] >= 5 * sizes[0]
    sharded = cost["memory"]["sharded", sizes[-1]] / cost["memory"]["sharded", sizes[0]]
    in_memory = cost["memory"]["in-memory", sizes[-1]] / cost["memory"]["in-memory", sizes[0]]
    assert sharded <= 1.10 < in_memory  # the goal, and the path it replaced growing
    assert set(cost["cpu"]) == {1, 2}
