"""The bit-allocation report on real short runs: the JSON schema round trip and its version, every
field documented, totals from msq.accounting, CSV and Markdown agreeing with the JSON, the bit-map
adapters, failed runs (killed without a summary, crashed with one), and safe output paths."""
import csv
import doctest
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from msq.accounting import summarize
from msq.cli import main
from msq.report import bit_map, build_report, export_report, render_report
from msq.report.fields import DOCUMENTED, field_paths, fields_markdown, undocumented
from msq.report.paths import OutputExistsError, UnsafePathError, safe_filename
from msq.report.schema import SCHEMA_VERSION, ReportSchemaError, from_json, to_json
from msq.report.tabular import CSV_COLUMNS, MD_LAYER_HEADER
from msq.runs import RunStore
from test_report_helpers import completed_run, crashed_run, killed_run, store_home

pytestmark = pytest.mark.xdist_group("report")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report():
    return build_report(store_home(), completed_run())


def test_json_round_trip_keeps_every_value_and_the_schema_version(report):
    text = to_json(report)
    assert from_json(text) == report
    assert report["schema_version"] == SCHEMA_VERSION == 1
    with pytest.raises(ReportSchemaError, match="schema_version = 2 is not supported"):
        from_json(text.replace('"schema_version": 1', '"schema_version": 2'))
    with pytest.raises(ReportSchemaError, match="not an MSQ bit-allocation report"):
        from_json('{"layers": {}}')


def test_every_field_is_documented_and_the_readme_table_is_current(report):
    assert undocumented(report) == set()
    assert DOCUMENTED <= field_paths(report)         # and every documented field is present
    doc = (REPO / "docs" / "report_fields.md").read_text()
    assert fields_markdown() in doc


def test_report_holds_the_run_layer_by_layer(report):
    store = RunStore(store_home())
    run_id = completed_run()
    summary = store.run(run_id)["summary"]
    assert report["run"]["complete"] and report["notes"] == []
    assert list(report["layers"]) == ["conv1", "conv2", "fc"]
    for s in summary["layers"]:
        layer = report["layers"][s["fqn"]]
        for key in ("bits", "params", "macs", "scale", "lsb_density", "sensitivity", "sensitivity_se", "fixed",
                    "fixed_reason", "bit_history", "shape", "kind"):
            assert layer[key] == s[key], key
    conv2 = report["layers"]["conv2"]
    assert [(h["old_bits"], h["new_bits"]) for h in conv2["bit_history"]] == [(8, 7), (7, 6)]
    assert [h["epoch"] for h in conv2["bit_history"]] == [1, 2]          # the two search epochs
    assert report["layers"]["conv1"]["fixed_reason"] == "first layer"
    rows = list(report["layers"].values())
    expected = summarize([l["params"] for l in rows], [l["bits"] for l in rows], summary["float_params"],
                         [l["macs"] for l in rows], [l["act_bits"] for l in rows])
    assert {k: report["totals"][k] for k in expected} == expected
    assert report["totals"]["compression"] == summary["compression"]
    assert sum(p["numel"] for p in report["float_parameters"]) == report["totals"]["float_params"]
    assert {p["role"] for p in report["float_parameters"]} == {"bias"}
    assert report["config"] == store.run(run_id)["config"] and report["seed"] == 0
    assert set(report["timings"]) >= {"pretrain", "search", "finetune"} and report["versions"]["torch"]
    assert report["totals"]["float_acc"] == summary["float_acc"]
    assert report["totals"]["final_acc"] == summary["final_acc"]


def test_csv_has_one_row_per_layer_equal_to_the_json(report):
    rows = list(csv.DictReader(io.StringIO(render_report(report, "csv"))))
    assert [r["fqn"] for r in rows] == list(report["layers"]) and list(rows[0]) == CSV_COLUMNS
    for row in rows:
        layer = report["layers"][row["fqn"]]
        for key in ("index", "params", "macs", "bits", "bit_ops"):
            assert int(row[key]) == layer[key]
        for key in ("scale", "lsb_density", "quant_error", "sensitivity", "sensitivity_se"):
            assert float(row[key]) == layer[key]                          # exact: full precision
        assert row["shape"] == "x".join(map(str, layer["shape"]))
        assert json.loads(row["bit_history"]) == layer["bit_history"]
        assert row["fixed"] == str(layer["fixed"]) and row["fixed_reason"] == layer["fixed_reason"]


def _md_table(text: str, header: list) -> list[dict]:
    lines = text.splitlines()
    start = lines.index("| " + " | ".join(header) + " |")
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, [c.strip() for c in line.strip("|").split(" | ")])))
    return rows


def test_markdown_agrees_with_the_json(report):
    md = render_report(report, "md")
    rows = _md_table(md, MD_LAYER_HEADER)
    assert [r["layer"].strip("`") for r in rows] == list(report["layers"])
    for row in rows:
        layer = report["layers"][row["layer"].strip("`")]
        assert int(row["bits"]) == layer["bits"]
        assert int(row["params"].replace(",", "")) == layer["params"]
        assert int(row["MACs"].replace(",", "")) == layer["macs"]
        assert float(row["LSB density"]) == pytest.approx(layer["lsb_density"], abs=5e-4)
        assert float(row["scale"]) == pytest.approx(layer["scale"], rel=1e-5)
        assert row["bit history"] == ("unchanged" if not layer["bit_history"] else
                                      " → ".join([str(layer["bit_history"][0]["old_bits"])] +
                                                 [f"{h['new_bits']} (e{h['epoch']})" for h in layer["bit_history"]]))
    t = report["totals"]
    assert f"| compression (weights) | {t['compression']:.2f}× |" in md
    assert f"| average bits | {t['average_bits']:.2f} |" in md
    assert f"= {int(t['model_size_bytes']):,} bytes" in md
    assert f"{t['float_acc']:.2f}% → {t['final_acc']:.2f}%" in md
    assert "<script>" not in md.split("## Config")[0]     # the run name is escaped (the config is a code block)


def test_bit_maps_for_other_tools(report):
    assert bit_map(report) == {fqn: l["bits"] for fqn, l in report["layers"].items()}
    assert json.loads(render_report(report, "bits")) == bit_map(report)
    from msq.deploy.hawq import HAWQMappingError
    with pytest.raises(HAWQMappingError, match=r"run.model = 'tinycnn'.*tv:resnet18.*--format bits"):
        render_report(report, "hawq")     # HAWQ has no tinycnn: an error, not a config HAWQ would ignore


def test_a_killed_run_without_summary_gets_a_report_that_says_so():
    report = build_report(store_home(), killed_run())
    store = RunStore(store_home())
    assert report["run"]["status"] == "failed" and not report["run"]["complete"]
    assert "FAILED (worker died" in report["notes"][0] and "up to epoch 3" in report["notes"][0]
    assert any("No final summary" in n for n in report["notes"])
    assert [l["fqn"] for l in store.layers(killed_run())] == list(report["layers"])
    stored_bits = {l["fqn"]: l["bits"] for l in store.layers(killed_run())}
    assert {f: l["bits"] for f, l in report["layers"].items()} == stored_bits
    prunes = [e for e in store.events(killed_run(), kinds="prune")]
    assert sum(len(l["bit_history"]) for l in report["layers"].values()) == len(prunes) > 0
    acc = store.scalar_series(killed_run(), "val_acc")["val_acc"]
    assert report["totals"]["final_acc"] == pytest.approx(acc["value"][-1], rel=1e-6)
    assert report["totals"]["float_acc"] == pytest.approx(acc["value"][0], rel=1e-6)
    assert report["totals"]["model_size_bytes"] is not None and all(
        l["scale"] is not None and l["lsb_density"] is not None for l in report["layers"].values())
    assert report["versions"] is None and report["run"]["epochs_done"] == 3 and report["run"]["steps_done"] == 69
    assert from_json(to_json(report)) == report and undocumented(report) == set()
    md = render_report(report, "md")
    assert "status **failed** (incomplete)" in md and "FAILED" in md
    assert len(list(csv.DictReader(io.StringIO(render_report(report, "csv"))))) == 3


def test_a_crashed_run_with_a_failed_summary():
    report = build_report(store_home(), crashed_run())
    assert report["run"]["status"] == "failed" and not report["run"]["complete"]
    assert "disk full (simulated)" in report["run"]["error"] and "FAILED" in report["notes"][0]
    assert report["run"]["epochs_done"] == 2 and report["versions"] is not None


def test_output_names_are_sanitized_and_stay_in_the_run_folder(report, tmp_path):
    run_id = completed_run()
    path = export_report(store_home(), run_id, "json", report=report, overwrite=True)
    assert path.parent == (store_home() / run_id / "reports").resolve()
    assert path.name == f"msq-report-{run_id}-λ_64_etc_script_alert_x_script_run.json"
    for text, expected in [("../../etc/passwd", "etc_passwd"), ("..", "run"), ("", "run"), ("CON", "run_CON"),
                           ("a\x00b/c\\d", "a_b_c_d"), ("\u202egnp.exe", "gnp.exe"), ("日本語 モデル", "日本語_モデル")]:
        assert safe_filename(text) == expected
    assert len(safe_filename("模型" * 200).encode()) <= 80


def test_unsafe_output_paths_are_refused(report, tmp_path):
    run_id, home = completed_run(), store_home()
    target = tmp_path / "r.json"
    export_report(home, run_id, "json", target, report=report)
    with pytest.raises(OutputExistsError, match="pass --force"):
        export_report(home, run_id, "json", target, report=report)
    said = []
    export_report(home, run_id, "json", target, report=report, overwrite=True, notify=said.append)
    assert said == [f"replaced the existing {target}"]
    outside = tmp_path / "outside.json"
    outside.write_text("keep me")
    link = tmp_path / "link.json"
    link.symlink_to(outside)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        export_report(home, run_id, "json", link, report=report, overwrite=True)
    assert outside.read_text() == "keep me"
    for bad in ["", "bad\x00name.json", "x\nname.json", str(tmp_path / "missing" / "r.json")]:
        with pytest.raises(UnsafePathError):
            export_report(home, run_id, "json", bad, report=report)
    folder_out = export_report(home, run_id, "csv", str(tmp_path) + os.sep, report=report)
    assert folder_out.parent == tmp_path.resolve() and folder_out.name.startswith(f"msq-report-{run_id}")


def test_a_reports_folder_linked_out_of_the_run_folder_is_refused(tmp_path):
    run_id = crashed_run()
    reports = store_home() / run_id / "reports"
    reports.symlink_to(tmp_path, target_is_directory=True)
    try:
        with pytest.raises(UnsafePathError, match="link out of the run folder"):
            export_report(store_home(), run_id, "json")
        assert list(tmp_path.iterdir()) == []
    finally:
        reports.unlink()


def test_cli_report_writes_says_and_refuses(tmp_path, capsys):
    run_id, home = completed_run(), str(store_home())
    out = tmp_path / "report.md"
    assert main(["report", run_id, "--home", home, "--format", "md", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.read_text().startswith("# Bit-allocation report")
    assert main(["report", run_id, "--home", home, "--format", "md", "--out", str(out)]) == 2
    assert "exists: pass --force" in capsys.readouterr().err
    assert main(["report", run_id, "--home", home, "--format", "md", "--out", str(out), "--force"]) == 0
    assert "replaced the existing" in capsys.readouterr().err
    assert main(["report", run_id, "--home", home, "--format", "bits", "--out", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == bit_map(build_report(home, run_id))
    assert main(["report", run_id, "--home", home, "--format", "png", "--out", str(tmp_path / "a.png")]) == 2
    assert "one file per figure into a folder" in capsys.readouterr().err and not (tmp_path / "a.png").exists()
    assert main(["report", run_id, "--home", home, "--format", "md", "--figure", "allocation"]) == 2
    assert "--figure is for the png and pdf formats" in capsys.readouterr().err
    assert main(["report", "../../etc", "--home", home]) == 2
    assert "invalid run id" in capsys.readouterr().err
    assert main(["report", killed_run(), "--home", home, "--format", "csv", "--out", str(tmp_path)]) == 0
    assert "covers what was stored" in capsys.readouterr().err


def test_png_without_chromium_says_how_to_install_it(report, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("MSQ_CHROMIUM", raising=False)
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    from msq.report.assets import MissingAssetError
    with pytest.raises(MissingAssetError, match="apt-get install chromium"):
        render_report(report, "png", figure="allocation")


def test_reports_need_neither_torch_nor_plotly(report):
    """The dashboard imports msq.report: building a report (without the checkpoint) and rendering the
    text formats and the HTML page must not import torch, plotly or streamlit."""
    code = ("import sys, msq.report as r\n"
            f"rep = r.build_report({str(store_home())!r}, {completed_run()!r}, read_checkpoint=False)\n"
            "for f in ('json', 'csv', 'md', 'html', 'bits'): r.render_report(rep, f)\n"
            "print(sorted(m for m in ('torch', 'plotly', 'streamlit', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_doctests_of_the_formatting_helpers():
    from msq.report import fmt, packing
    for module in (fmt, packing):
        assert doctest.testmod(module).failed == 0
