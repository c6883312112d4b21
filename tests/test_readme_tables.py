"""scripts/readme_tables.py: README's generated benchmark blocks equal what the committed JSONs give (so README
cannot drift from them), the numbers land in the cells they claim to be, and a JSON that lacks a field the
generator reads stops it with the file and the field named."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location("readme_tables", REPO_ROOT / "scripts" / "readme_tables.py")
rt = importlib.util.module_from_spec(_spec)
sys.modules["readme_tables"] = rt  # dataclasses look their module up there
_spec.loader.exec_module(rt)


def _git_history_complete() -> bool:
    try:
        out = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=REPO_ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return False
    return out == "false"


needs_git = pytest.mark.skipif(not _git_history_complete(),
                               reason="needs a full git checkout: blocks name the commit that wrote each JSON")


def _source(name: str, data: dict | None = None) -> "rt.Source":
    """A block's JSON as committed, with a stand-in commit, so renderers can be tested without git."""
    rel = rt.RENDER[name][1]
    if data is None:
        data = json.loads((REPO_ROOT / rel).read_text())
    return rt.Source(rel, data, "abc1234", "2000-01-01")


def _table_rows(block: str) -> dict[str, dict[str, str]]:
    """First markdown table of a block: first cell -> {header: cell}."""
    lines = [ln for ln in block.splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if len(cells) != len(head):
            break  # the next table
        rows[cells[0]] = dict(zip(head, cells))
    return rows


@needs_git
def test_readme_blocks_equal_what_the_committed_jsons_give(repo_root):
    text = (repo_root / "README.md").read_text()
    assert sorted(re.findall(r"<!-- generated: ([a-z_]+) -->", text)) == sorted(rt.RENDER), \
        "README should hold each generated block exactly once"
    regenerated = rt.render_readme(text)
    assert regenerated == text, "README's benchmark blocks differ from the JSONs: run scripts/readme_tables.py"


@needs_git
def test_check_mode_reports_drift_and_rewrite_repairs_it(tmp_path, capsys, repo_root):
    text = (repo_root / "README.md").read_text()
    start = text.index("<!-- generated: gpu_throughput -->")
    tampered = text[:start] + text[start:].replace("11,987", "11,988", 1)
    assert tampered != text
    readme = tmp_path / "README.md"
    readme.write_text(tampered)
    assert rt.main(["--check", "--readme", str(readme)]) == 1
    out = capsys.readouterr().out
    assert "-| LeNet w=1 | 11,988" in out and "+| LeNet w=1 | 11,987" in out
    assert rt.main(["--readme", str(readme)]) == 0
    assert readme.read_text() == text
    assert rt.main(["--check", "--readme", str(readme)]) == 0


def test_gpu_cells_hold_the_json_values():
    data = json.loads((REPO_ROOT / rt.RENDER["gpu_throughput"][1]).read_text())
    block = rt.gpu_throughput(_source("gpu_throughput", data))
    rows = _table_rows(block)
    recs = data["records"]

    def rec(loop, arch, width, k, variant=None):
        return next(r for r in recs if (r["loop"], r["arch"], r["width"], r["k"], r.get("variant"))
                    == (loop, arch, width, k, variant))

    lenet = rows["LeNet w=1"]
    assert lenet["(c) seed loop"] == f"{round(rec('seed_loop', 'lenet', 1, 1)['images_per_s_per_model']):,}"
    for k in (8, 32, 128):
        assert lenet[f"(a) K={k}"] == f"{round(rec('batched', 'lenet', 1, k)['images_per_s_total']):,}"
    # best pack over the seed loop, counted here from img/s, not from the JSON's stored ratios
    seed = rec("seed_loop", "vgg", 1, 1)["images_per_s_per_model"]
    packs = [r for r in recs if r["loop"] == "batched" and not r.get("variant") and (r["arch"], r["width"]) == ("vgg", 1)]
    best = max(packs, key=lambda r: r["images_per_s_total"])
    assert rows["VGG-11-BN w=1"]["best (a) ÷ (c)"] == f"{best['images_per_s_total'] / seed:.1f}× (K={best['k']})"
    assert rows["VGG-11-BN w=4"]["(a) K=128"] == "not measured"

    # the goal verdict: best pack of any precision against goals.yaml's target
    target = yaml.safe_load((REPO_ROOT / "bench" / "goals.yaml").read_text())["goals"]["x_seed_loop_every_arch_width"]
    for arch, width, label in (("lenet", 1, "LeNet w=1"), ("vgg", 4, "VGG-11-BN w=4")):
        seed = rec("seed_loop", arch, width, 1)["images_per_s_per_model"]
        ratio = max(r["images_per_s_total"] for r in recs
                    if r["loop"] == "batched" and (r["arch"], r["width"]) == (arch, width)) / seed
        verdict = "met" if ratio >= target else "**not met**"
        assert re.search(rf"{re.escape(label)} {ratio:.1f}× \(K=\d+, \w+, {re.escape(verdict)}\)", block), label
    assert f"at least {target:g}×" in block and "not judged here" in block  # an H200, goals are for an H100


def test_projection_says_incomplete_and_complete_only_when_the_json_does():
    data = json.loads((REPO_ROOT / rt.RENDER["gpu_projection"][1]).read_text())
    assert data["projection"]["complete"] is False
    block = rt.gpu_projection(_source("gpu_projection", data))
    assert "**INCOMPLETE**" in block and "takes longer than that" in block
    assert f"sum to {data['projection']['total_hours']:.1f} h" in block
    done = copy.deepcopy(data)
    done["projection"]["complete"] = True
    block = rt.gpu_projection(_source("gpu_projection", done))
    assert "INCOMPLETE" not in block and "projection of the whole grid" in block
    assert f"{data['projection']['estimated_packs']} of its packs estimated" in block
    done["projection"]["estimated_packs"] = 0
    assert "projection of the whole grid." in rt.gpu_projection(_source("gpu_projection", done))


def test_projection_shows_the_layout_probe_when_the_json_has_one():
    """training.pack_layout: auto keeps the probe's step time per layout; the block turns it into img/s per
    model (images per step / step time), marks the layout trained in and its gain over `grouped`."""
    data = json.loads((REPO_ROOT / rt.RENDER["gpu_projection"][1]).read_text())
    assert "Pack layouts" not in rt.gpu_projection(_source("gpu_projection", data))  # no probe: no table
    probed = copy.deepcopy(data)
    row = next(r for r in probed["projection"]["rows"] if r["measured"])
    x = row["measured"][0]
    x["images_per_s_per_model"], x["step_seconds"] = 1280.0, 0.1  # 128 images per member per step
    x["layout_probe_ms_per_step"] = {"grouped": 100.0, "grouped_channels_last": 80.0, "per_member": 64.0}
    x["trainer_layout"] = "per_member"
    block = rt.gpu_projection(_source("gpu_projection", probed))
    table = block[block.index("| block | K |"):].splitlines()
    line = table[2]
    from netdyn.packed import LAYOUTS

    assert list(LAYOUTS)[:3] == ["grouped", "grouped_channels_last", "per_member"]
    assert line.endswith("| 1,280 | 1,600 | **2,000** | " + "- | " * (len(LAYOUTS) - 3) + "1.56× |"), line


def test_graph_extraction_cells_and_goals():
    data = json.loads((REPO_ROOT / rt.RENDER["graph_extraction"][1]).read_text())
    block = rt.graph_extraction(_source("graph_extraction", data))
    w1 = next(r for r in data["results"] if r["width"] == 1)
    row = _table_rows(block)["1"]
    assert row["edges"] == f"{w1['edges']:,}"
    assert row["speed-up"] == f"{w1['networkx_s'] / w1['ours_core_s']:.0f}×"
    met = w1["networkx_s"] / w1["ours_core_s"] >= 50
    assert ("at least 50× networkx at width 1 — " + ("met" if met else "**not met**")) in block


def test_reference_graphs_verdict_follows_the_json():
    data = json.loads((REPO_ROOT / rt.RENDER["reference_graphs"][1]).read_text())
    assert "same nodes and edge sets in all" in rt.reference_graphs(_source("reference_graphs", data))
    broken = copy.deepcopy(data)
    broken["models"]["lenet_w1"]["edge_sets_match"] = False
    assert "**nodes or edges differ** in 1 of" in rt.reference_graphs(_source("reference_graphs", broken))


def _drop(data: dict, path: tuple) -> dict:
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return data


@pytest.mark.parametrize("name, path", [
    ("gpu_throughput", ("records", 3, "images_per_s_total")),
    ("gpu_throughput", ("machine", "device_name")),
    ("gpu_throughput", ("settings", "n_train")),
    ("gpu_projection", ("projection", "complete")),
    ("gpu_projection", ("settings", "argv")),
    ("cpu_throughput", ("pack_check", "rows", 1, "per_model_vs_k1")),
    ("cpu_pack_choice", ("total", "seconds_packed")),
    ("graph_extraction", ("goals", "goal_50x_at_width1_met")),
    ("graph_extraction", ("results", 0, "networkx_s")),
    ("reference_graphs", ("models", "lenet_w1", "edge_sets_match")),
    ("reference_graphs", ("netdyn", "commit")),
    ("quickstart", ("steps", "tests", "summary")),
    ("quickstart", ("machine", "cpu_model")),
])
def test_a_missing_field_stops_the_generator_naming_file_and_field(name, path):
    data = json.loads((REPO_ROOT / rt.RENDER[name][1]).read_text())
    rt.render_block(name, _source(name, data))  # the committed file renders
    field = str(path[-1]) if name != "graph_extraction" or path[0] != "goals" else "goal_<N>x_at_width1_met"
    with pytest.raises(rt.SourceError, match=re.escape(rt.RENDER[name][1]) + r".*" + re.escape(field)):
        rt.render_block(name, _source(name, _drop(data, path)))


def test_unknown_or_unclosed_blocks_stop():
    fake = lambda rel: pytest.fail("nothing should be loaded")  # noqa: E731
    with pytest.raises(rt.SourceError, match="unknown generated blocks"):
        rt.render_readme("<!-- generated: no_such_block -->\n<!-- /generated -->\n", load=fake)
    with pytest.raises(rt.SourceError, match="not closed"):
        rt.render_readme("<!-- generated: gpu_throughput -->\ntext\n", load=fake)


def test_text_outside_blocks_is_kept():
    text = "before 1.0×\n<!-- generated: cpu_pack_choice -->\nstale\n<!-- /generated -->\nafter 2.0×\n"
    out = rt.render_readme(text, load=lambda rel: _source("cpu_pack_choice"))
    assert out.startswith("before 1.0×\n<!-- generated: cpu_pack_choice -->\n`bench/cpu_pack_choice.py`")
    assert out.endswith("<!-- /generated -->\nafter 2.0×\n") and "stale" not in out


@needs_git
def test_an_untracked_json_is_refused():
    with pytest.raises(rt.SourceError, match="not tracked"):
        rt.load_source("bench/results/no_such_result.json")


def test_projection_takes_the_8_gpu_goal_from_goals_yaml(monkeypatch):
    """The cluster goal is bench/goals.yaml's paper_grid_hours_8_gpus, not a number of the renderer's own."""
    data = json.loads((REPO_ROOT / rt.RENDER["gpu_projection"][1]).read_text())
    goals = copy.deepcopy(rt.load_goals())
    assert f"≤ {goals['goals']['paper_grid_hours_8_gpus']:g} h on 8 GPUs" in rt.gpu_projection(
        _source("gpu_projection", data))
    goals["goals"]["paper_grid_hours_8_gpus"] = 42.5
    monkeypatch.setattr(rt, "load_goals", lambda: goals)
    assert "≤ 42.5 h on 8 GPUs" in rt.gpu_projection(_source("gpu_projection", data))


def test_projection_names_the_sessions_whose_measurements_it_kept():
    data = json.loads((REPO_ROOT / rt.RENDER["gpu_projection"][1]).read_text())
    assert "earlier sessions" not in rt.gpu_projection(_source("gpu_projection", data))
    resumed = copy.deepcopy(data)
    kept = [x for r in resumed["projection"]["rows"] for x in r["measured"]][:2]
    for x in kept:
        x["carried_from"] = "p.json (2026-11-28, abc1234)"
    block = rt.gpu_projection(_source("gpu_projection", resumed))
    assert "(2 of them in earlier sessions: p.json (2026-11-28, abc1234))" in block


def _quickstart_data(**study) -> dict:
    step = {"seconds": 600.0, "exit_code": 0, "load_1min_start": 0.1, "load_1min_end": 1.9}
    return {"commit": "1234abc", "created": "2000-01-01T00:00:00+00:00",
            "machine": {"cpu_model": "Some CPU", "cpu_count": 2, "torch": "2.0"},
            "steps": {"setup": {**step, "seconds": 75.0}, "study": {**step, **study},
                      "tests": {**step, "seconds": 650.0, "summary": "850 passed in 640.00s"}}}


def test_quickstart_names_each_step_its_time_and_a_failure():
    src = rt.Source(rt.RENDER["quickstart"][1], _quickstart_data(seconds=930.0), "abc1234", "2000-01-01")
    block = rt.quickstart(src)
    assert "clean clone of 1234abc" in block and "Some CPU, 2 cores" in block
    assert "requirements.lock` (downloads included; the Debian packages were already installed): 75 s" in block
    assert "the default study: 15.5 min (1-min load 0.10 at start)" in block
    assert "the test suite: 10.8 min (850 passed in 640.00s; 1-min load 0.10 at start)" in block
    assert "exit" not in block
    failed = rt.quickstart(rt.Source(src.rel, _quickstart_data(exit_code=1), "abc1234", "2000-01-01"))
    assert "the default study: 10.0 min, **exit 1** (1-min load" in failed
    with pytest.raises(rt.SourceError, match=r"quickstart_cpu.json: field steps.tests missing"):
        data = _quickstart_data()
        del data["steps"]["tests"]
        rt.render_block("quickstart", rt.Source(src.rel, data, "abc1234", "2000-01-01"))
