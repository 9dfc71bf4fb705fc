"""``python -m msq export RUN --format onnx`` on real runs (tinycnn on sklearn digits): an MSQ run, a
BSQ run and a multi-bit run at a chosen width, each loaded by onnxruntime and checked against the
run's own fake-quantized model on held-out digits; the file carries the input normalisation."""
import functools
import json

import onnx
import onnxruntime as ort
import pytest
import torch

from msq.cli import main
from msq.data import load_dataset
from msq.deploy.run_model import load_run_model
from msq.deploy.verify import compare_with_onnxruntime
from test_report_helpers import _train, completed_run, store_home, tiny_config

pytestmark = pytest.mark.xdist_group("report")


@functools.lru_cache(maxsize=None)
def method_run(method: str) -> str:
    cfg = tiny_config(width=16).to_dict()
    cfg["method"] = method
    if method == "multibit":
        cfg["multibit"] = {"bits": [2, 4], "act_bits": "same", "eval_bits": [3]}
    from msq.config import RunConfig
    return _train(RunConfig.from_dict(cfg))


def _export(run_id, tmp_path, *extra):
    out = tmp_path / f"{run_id}.onnx"
    assert main(["export", run_id, "--home", str(store_home()), "--format", "onnx", "--out", str(out), *extra]) == 0
    return out


def _digits(cfg):
    data = load_dataset(cfg.data)
    return torch.stack([data.val[i][0] for i in range(128)]), data


@pytest.mark.parametrize("method", ["msq", "bsq", "multibit"])
def test_a_run_exports_to_onnx_that_onnxruntime_runs_like_the_run(method, tmp_path, capsys):
    run_id = completed_run() if method == "msq" else method_run(method)
    extra = ("--width", "2") if method == "multibit" else ()
    path = _export(run_id, tmp_path, *extra)
    out, err = capsys.readouterr()
    assert out.strip() == str(path.resolve()) and "ONNX opset" in err and "DequantizeLinear" in err
    model, cfg, _ = load_run_model(store_home(), run_id, 2 if method == "multibit" else None)
    images, data = _digits(cfg)
    proto = onnx.load(path)
    result = compare_with_onnxruntime(model, proto, images)
    print(f"\n{method}: {result}")
    assert result["ok"] and result["clean_max_abs_diff"] <= 1e-4 and result["clean_argmax_agreement"] == 1.0
    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert json.loads(meta["msq.input_mean"]) == pytest.approx(list(data.mean))
    assert meta["msq.run_id"] == run_id and meta["msq.method"] == method
    if method == "multibit":
        assert set(json.loads(meta["msq.bits"]).values()) <= {2, 8}    # searched layers at --width 2, fixed at 8


def test_width_is_refused_for_runs_trained_to_one_allocation(tmp_path, capsys):
    code = main(["export", completed_run(), "--home", str(store_home()), "--format", "onnx", "--width", "3",
                 "--out", str(tmp_path / "x.onnx")])
    assert code == 2 and "only for multi-bit runs" in capsys.readouterr().err
