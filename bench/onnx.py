"""The ONNX export measured side by side in one run (not a test), per model and width mix:

- file size: the .onnx on disk vs the report's predicted model size (quantized weights packed at their
  widths + every float parameter at 32 bits), and the integer weight bytes vs the same weights packed
  at their exact widths (the containers round 3 bits up to INT4, 5-7 up to INT8);
- agreement: onnxruntime vs the torch fake-quantized model on 256 held-out mnist5k images: max |logit
  difference|, argmax agreement, and how many samples had an activation land on the other side of a
  rounding tie (``msq.deploy.verify``; their logits then differ by one activation step);
- speed: onnxruntime time per 32-image batch (best of 6 interleaved repeats) of the quantized model vs
  the same graph with float weights and no activation quantizers.

Each model is first trained in float for 12 batches of 128 mnist5k images, so that logits and argmax mean
something (~90% accuracy for LeNet-5) without making the bench slow.
onnxruntime's CPU kernels have no INT2/INT4 convolution: it dequantizes the weights (once per run),
so the quantized file is smaller but not faster here; the Q/DQ activation pairs cost extra time.

    python bench/onnx.py            # ~1-2 minutes on 2 cores
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

# this file is called onnx.py: keep its folder off the path, or ``import onnx`` would import it
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from msq.accounting import model_size_bytes  # noqa: E402
from msq.config import DataConfig, QuantConfig  # noqa: E402
from msq.data import load_dataset, make_loader  # noqa: E402
from msq.deploy.onnx_export import export_onnx, float_onnx  # noqa: E402
from msq.deploy.verify import compare_with_onnxruntime  # noqa: E402
from msq.quant import quant_layers, quantize_, restore_, set_bit_allocation_, set_mode_  # noqa: E402
from msq.quant.inventory import float_param_count  # noqa: E402
from sample_models import create_model  # noqa: E402

MODELS = ("lenet5", "resnet20", "mobilenet_tiny")
MIXES = {"uniform 8": (8,), "mixed 2/3/4/8": (2, 3, 4, 8)}   # searched layers, cycled
BATCH, REPEATS, EVAL, TRAIN_BATCHES = 32, 6, 256, 12


def pretrained(name: str, data) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_channels=1, image_size=28)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for step, (x, y) in enumerate(make_loader(data.train, 128, shuffle=True)):
        if step == TRAIN_BATCHES:
            break
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def quantized(float_model, widths, act_bits):
    model = restore_(float_model) if any(True for _ in quant_layers(float_model)) else float_model
    quantize_(model, QuantConfig(init_bits=8, act_bits=act_bits))
    searched = [n for n, layer in quant_layers(model) if not layer.fixed]
    set_bit_allocation_(model, {n: widths[i % len(widths)] for i, n in enumerate(searched)})
    set_mode_(model, "quant")
    return model.eval()


def seconds_per_batch(sessions: dict, x: np.ndarray) -> dict:
    times = {k: [] for k in sessions}
    for _ in range(REPEATS):                       # interleaved, so load changes hit both alike
        for key, sess in sessions.items():
            started = time.perf_counter()
            sess.run(None, {"input": x})
            times[key].append(time.perf_counter() - started)
    return {k: min(v) for k, v in times.items()}      # best of REPEATS: the machine is shared


def session(path_or_bytes):
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    return ort.InferenceSession(path_or_bytes, options, providers=["CPUExecutionProvider"])


def main() -> None:
    started = time.perf_counter()
    data = load_dataset(DataConfig(name="mnist5k"))
    images = torch.stack([data.val[i][0] for i in range(EVAL)])
    batch = images[:BATCH].numpy()
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{EVAL} mnist5k validation images, timing batch {BATCH}\n")
    header = (f"{'model':<15}{'mix':<15}{'act':>4}{'avg bits':>9}{'file B':>10}{'predicted B':>12}{'file/pred':>10}"
              f"{'int W B':>9}{'packed B':>9}{'max|Δ|':>10}{'clean max|Δ|':>13}{'argmax':>8}{'tie smp':>8}"
              f"{'ms q':>7}{'ms float':>9}{'q/float':>8}")
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            base = pretrained(name, data)
            float_proto = None
            for label, widths in MIXES.items():
                for act_bits in (None, 4):
                    model = quantized(base, widths, act_bits)
                    with torch.no_grad():
                        model(images[:2])
                    path = Path(tmp) / f"{name}-{len(widths)}-{act_bits}.onnx"
                    info = export_onnx(model, images[:1], path)
                    layers = quant_layers(model)
                    numels, bits = [l.weight.numel() for _, l in layers], [l.bits for _, l in layers]
                    predicted = model_size_bytes(numels, bits, float_param_count(model))
                    result = compare_with_onnxruntime(model, onnx.load(path), images)
                    if float_proto is None:
                        float_proto = float_onnx(model, images[:1]).SerializeToString()
                    speed = seconds_per_batch({"q": session(str(path)), "float": session(float_proto)}, batch)
                    avg = sum(n * b for n, b in zip(numels, bits)) / sum(numels)
                    print(f"{name:<15}{label:<15}{str(act_bits or '-'):>4}{avg:>9.2f}{info['file_bytes']:>10,}"
                          f"{predicted:>12,.0f}{info['file_bytes'] / predicted:>10.3f}{info['weight_bytes']:>9,}"
                          f"{info['packed_bytes']:>9,}{result['max_abs_diff']:>10.1e}{result['clean_max_abs_diff']:>13.1e}"
                          f"{result['argmax_agreement']:>8.1%}{result['samples_with_flips']:>8}"
                          f"{speed['q'] * 1e3:>7.2f}{speed['float'] * 1e3:>9.2f}{speed['q'] / speed['float']:>8.2f}")
                    assert result["ok"], result
    print(f"\nfile/pred: the file over the report's predicted size (BatchNorm statistics and graph metadata "
          f"are the rest); int W B vs packed B: container rounding (3 -> 4, 5-7 -> 8 bits).\n"
          f"max|Δ| over all samples; clean: over samples without a tie flip; tie smp: samples with one.\n"
          f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
