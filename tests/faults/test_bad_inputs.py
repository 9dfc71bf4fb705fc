"""Bad input ends in one clear line, never a traceback and never silence (issue 14, item 6).

Two tables: config values checked in-process through ``RunConfig.from_dict`` (the path the CLI, the
dashboard's launch form and the worker all take), and CLI invocations run as real subprocesses
(``python -m msq ...`` with a temporary ``--home``) where the command line itself is what is tested.
Each case asserts a non-zero exit, exactly one ``error:`` line on stderr with no traceback, and the
field (or flag) it is about; the warn cases assert exit 0 and one ``warning:`` line.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from msq.cli import main
from msq.config import RunConfig
from msq.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


# -- RunConfig.from_dict: every field's type, from its annotation -----------------------------------------
CONFIG_CASES = [
    ({"data": {"augment": "no"}}, "data.augment = 'no' is invalid: allowed true or false"),
    ({"data": {"download": "yes"}}, "data.download = 'yes' is invalid: allowed true or false"),
    ({"data": {"download": 1}}, "data.download = 1 is invalid: allowed true or false"),
    ({"data": {"download": "0"}}, "data.download = '0' is invalid: allowed true or false"),
    ({"data": {"root": 5}}, "data.root = 5 is invalid: allowed a string"),
    ({"data": {"root": None}}, "data.root = None is invalid: allowed a string"),
    ({"data": {"name": 7}}, "data.name = 7 is invalid: allowed a string"),
    ({"data": {"limit": "10"}}, "data.limit = '10' is invalid: allowed an integer or null"),
    ({"data": {"val_fraction": "0.2"}}, "data.val_fraction = '0.2' is invalid: allowed a number"),
    ({"data": {"split_seed": 1.5}}, "data.split_seed = 1.5 is invalid: allowed an integer"),
    ({"checkpoint": 123}, "run.checkpoint = 123 is invalid: allowed a string or null"),
    ({"checkpoint": ["a"]}, "run.checkpoint = ['a'] is invalid: allowed a string or null"),
    ({"model_kwargs": {"num_classes": "x"}}, "run.model_kwargs = {'num_classes': 'x'} is invalid"),
    ({"model_kwargs": {"image_size": 32}}, "run.model_kwargs = {'image_size': 32} is invalid"),
    ({"model_kwargs": [1]}, "run.model_kwargs = [1] is invalid: allowed a JSON object"),
    ({"model": 5}, "run.model = 5 is invalid: allowed a string"),
    ({"name": 5}, "run.name = 5 is invalid: allowed a string"),
    ({"method": None}, "run.method = None is invalid: allowed a string"),
    ({"uniform_bits": "4"}, "run.uniform_bits = '4' is invalid: allowed an integer"),
    ({"quant": {"init_bits": 8.0}}, "quant.init_bits = 8.0 is invalid: allowed an integer"),
    ({"quant": {"grid": 1}}, "quant.grid = 1 is invalid: allowed a string"),
    ({"quant": {"exclude": "fc"}}, "quant.exclude = 'fc' is invalid: allowed a list"),
    ({"quant": {"act_bits": "4"}}, "quant.act_bits = '4' is invalid: allowed an integer or null"),
    ({"quant": {"keep_first_last": "no"}}, "quant.keep_first_last = 'no' is invalid: allowed true or false"),
    ({"reg": {"lam": "big"}}, "reg.lam = 'big' is invalid: allowed a number"),
    ({"reg": {"lam": True}}, "reg.lam = True is invalid: allowed a number"),
    ({"reg": {"warmup_steps": 2.5}}, "reg.warmup_steps = 2.5 is invalid: allowed an integer"),
    ({"prune": {"every": True}}, "prune.every = True is invalid: allowed an integer"),
    ({"prune": {"target_avg_bits": "3"}}, "prune.target_avg_bits = '3' is invalid: allowed a number or null"),
    ({"prune": {"threshold": None}}, "prune.threshold = None is invalid: allowed a number"),
    ({"hessian": {"enabled": "off"}}, "hessian.enabled = 'off' is invalid: allowed true or false"),
    ({"hessian": {"target_rse": "x"}}, "hessian.target_rse = 'x' is invalid: allowed a number or null"),
    ({"hessian": {"z": None}}, "hessian.z = None is invalid: allowed a number"),
    ({"train": {"pretrain_epochs": 0, "search_epochs": 0, "finetune_epochs": 0}},
     "train.search_epochs = 0 is invalid: allowed at least one epoch in total"),
    ({"train": {"lr": "0.1"}}, "train.lr = '0.1' is invalid: allowed a number"),
    ({"train": {"device": 0}}, "train.device = 0 is invalid: allowed a string"),
    ({"train": {"search_lr": [1]}}, "train.search_lr = [1] is invalid: allowed a number or null"),
    ({"train": {"optimizer": None}}, "train.optimizer = None is invalid: allowed a string"),
    ({"train": {"batch_size": 1e3}}, "train.batch_size = 1000.0 is invalid: allowed an integer"),
    ({"multibit": {"bits": "2,4"}}, "multibit.bits = '2,4' is invalid: allowed a list"),
    ({"multibit": {"shared_bn": "maybe"}}, "multibit.shared_bn = 'maybe' is invalid: allowed true or false"),
    ({"multibit": {"eval_bits": 5}}, "multibit.eval_bits = 5 is invalid: allowed a list"),
    ({"bsq": {"max_bits": "8"}}, "bsq.max_bits = '8' is invalid: allowed an integer"),
    ({"bsq": {"search_lr": False}}, "bsq.search_lr = False is invalid: allowed a number or null"),
    ({"train": [1]}, "train must be a JSON object"),
    ({"train": {"epochs": 3}}, "train has unknown field(s) epochs"),
]


def _assert_one_line(message: str, expected: str) -> None:
    assert "\n" not in message.strip() and "Traceback" not in message, message
    assert expected in message, message


@pytest.mark.parametrize("changes,expected", CONFIG_CASES, ids=[e.split(" ")[0] for _, e in CONFIG_CASES])
def test_a_config_value_of_the_wrong_type_is_refused_naming_field_value_and_what_is_allowed(changes, expected):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict(changes)
    _assert_one_line(str(caught.value), expected)


def test_true_false_strings_are_read_as_what_they_say_and_tuples_as_lists():
    cfg = RunConfig.from_dict({"data": {"download": "false", "augment": "TRUE"}, "quant": {"exclude": ("fc",)}})
    assert cfg.data.download is False and cfg.data.augment is True and cfg.quant.exclude == ["fc"]
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_the_launch_form_reports_the_type_errors_by_field():
    from dashboard.components.launch_form import build_config, validate

    errors = validate(build_config({"data.augment": "no", "data.root": 5, "train.pretrain_epochs": 0,
                                    "train.search_epochs": 0, "train.finetune_epochs": 0}))
    assert errors["data.augment"].startswith("data.augment = 'no' is invalid")
    assert errors["data.root"].startswith("data.root = 5 is invalid")
    assert "at least one epoch" in errors["train.search_epochs"]


# -- the command line, as real processes -------------------------------------------------------------------
MODEL_FILES = {
    "wrong_out.py": "from torch import nn\n"
                    "def make(num_classes, in_channels, image_size):\n"
                    "    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size ** 2, 16), nn.ReLU(),\n"
                    "                         nn.Linear(16, 3))\n",
    "wrong_in.py": "from torch import nn\n"
                   "def make(num_classes):\n"
                   "    return nn.Sequential(nn.Flatten(), nn.Linear(100, 16), nn.ReLU(), nn.Linear(16, num_classes))\n",
    "raising.py": "from torch import nn\n"
                  "class Net(nn.Module):\n"
                  "    def __init__(self):\n"
                  "        super().__init__()\n"
                  "        self.fc = nn.Linear(4, 4)\n"
                  "    def forward(self, x):\n"
                  "        raise RuntimeError('boom\\nand a second line')\n"
                  "def make():\n"
                  "    return Net()\n",
    "exits.py": "import sys\nsys.exit(3)\n",
    "two_layers.py": "from torch import nn\n"
                     "def make(num_classes, in_channels, image_size):\n"
                     "    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size ** 2, 16), nn.ReLU(),\n"
                     "                         nn.Linear(16, num_classes))\n",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """User model files, odd config files, checkpoints, and a run store with one (untrained) run."""
    root = tmp_path_factory.mktemp("bad_inputs")
    for name, text in MODEL_FILES.items():
        (root / name).write_text(text)
    (root / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    (root / "broken.json").write_text('{"reg": {"lam": 1')
    (root / "list.json").write_text("[1, 2]")
    (root / "wrong_type.json").write_text(json.dumps({"data": {"augment": "no"}}))
    (root / "truncated.pt").write_bytes(b"PK\x03\x04 not a whole zip")
    (root / "a_file").write_text("not a folder")
    from msq.runs import RunStore
    store = RunStore(root / "home")
    run_id = store.create_run({"method": "msq", "model": "tinycnn", "data": {"name": "digits"}}, name="x")
    store.update_run(run_id, status="completed")
    store.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    (store.run_dir(run_id) / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    other = store.create_run({"method": "msq", "model": "tinycnn", "data": {"name": "digits"}}, name="pickle")
    store.update_run(other, status="completed")
    store.run_dir(other).mkdir(parents=True, exist_ok=True)
    import torch
    torch.save({"model": {}, "extra": _NotAWeight()}, store.run_dir(other) / "checkpoint.pt")
    store.close()
    return {"root": root, "home": root / "home", "run": run_id, "pickled_run": other}


class _NotAWeight:
    """An object torch.load(weights_only=True) refuses to unpickle."""


def msq_cli(*args: str, home, extra_env: dict | None = None, python_flags: tuple = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "MSQ_HOME": str(home), "PYTHONWARNINGS": "ignore", **(extra_env or {})}
    command = [sys.executable, *python_flags, "-m", "msq", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def _error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# (argument list with {root}/{home}/{run}/{pickled_run} placeholders, words the error line must contain)
CLI_CASES = [
    (["train", "--config", "{root}/latin1.json"], ["--config", "not UTF-8"]),
    (["train", "--config", "{root}/missing.json"], ["--config", "no such file"]),
    (["train", "--config", "{root}/broken.json"], ["not valid JSON"]),
    (["train", "--config", "{root}/list.json"], ["must be a JSON object"]),
    (["train", "--config", "{root}"], ["--config", "no such file"]),
    (["train", "--config", "{root}/wrong_type.json"], ["data.augment = 'no'", "true or false"]),
    (["train", "--model", "{root}/wrong_out.py:make", "--dataset", "digits"], ["model", "[2, 3]", "[2, 10]"]),
    (["train", "--model", "{root}/wrong_in.py:make", "--dataset", "digits"], ["model", "[2, 1, 8, 8]", "RuntimeError"]),
    (["train", "--model", "{root}/raising.py:make", "--dataset", "digits"], ["model", "boom"]),
    (["train", "--model", "{root}/exits.py:make", "--dataset", "digits"], ["exits.py", "SystemExit"]),
    (["train", "--model", "{root}/two_layers.py:nothing", "--dataset", "digits"], ["two_layers.py", "'nothing'"]),
    (["train", "--model", "{root}/nowhere.py:make"], ["model file", "not found"]),
    (["train", "--model", "nosuch"], ["unknown model 'nosuch'"]),
    (["train", "--model", "tv:nosuch"], ["unknown torchvision model"]),
    (["train", "--dataset", "foo"], ["unknown dataset 'foo'"]),
    (["train", "--dataset", "imagefolder:{root}/no_images"], ["no_images"]),
    (["train", "--home", "{root}/a_file", "--dataset", "digits"], ["--home", "a_file", "a folder you can write"]),
    (["train", "--home", "{root}/a_file/sub", "--dataset", "digits"], ["--home", "a folder you can write"]),
    (["train", "--home", "/proc/msq", "--dataset", "digits"], ["--home", "/proc/msq"]),
    (["train", "--epochs", "0,0,0"], ["--epochs", "at least one epoch"]),
    (["train", "--epochs", "a,b"], ["--epochs 'a,b' is invalid"]),
    (["train", "--set", "train.pretrain_epochs=0", "--set", "train.search_epochs=0", "--set",
      "train.finetune_epochs=0"], ["train.search_epochs", "at least one epoch"]),
    (["train", "--set", "checkpoint=123"], ["run.checkpoint = 123", "a string or null"]),
    (["train", "--set", 'checkpoint=["a"]'], ["run.checkpoint = ['a']"]),
    (["train", "--set", 'model_kwargs={"num_classes":"x"}'], ["run.model_kwargs", "num_classes"]),
    (["train", "--model", "mlp", "--dataset", "digits", "--set", 'model_kwargs={"hidden":"x"}'],
     ["run.model_kwargs = {'hidden': 'x'}", "'mlp'"]),
    (["train", "--model", "vit_tiny", "--dataset", "digits", "--set", 'model_kwargs={"patch_size":"x"}'],
     ["run.model_kwargs = {'patch_size': 'x'}"]),
    (["train", "--set", "data.augment=no"], ["data.augment = 'no'"]),
    (["train", "--set", "data.root=5"], ["data.root = 5"]),
    (["train", "--set", "nosuch.key=1"], ["unknown config key 'nosuch.key'"]),
    (["train", "--set", "noequals"], ["--set 'noequals'", "KEY=VALUE"]),
    (["train", "--checkpoint", "{root}/missing.pt", "--dataset", "digits"], ["checkpoint", "not found"]),
    (["train", "--checkpoint", "{root}/truncated.pt", "--dataset", "digits"], ["checkpoint", "weights-only"]),
    (["train", "--nproc", "0"], ["train.nproc = 0"]),
    (["train", "--lam", "nan"], ["reg.lam = nan"]),
    (["sweep", "--dataset", "foo", "--grid", "reg.lam=1,2"], ["unknown dataset 'foo'"]),
    (["sweep", "--grid", "reg.lam=-1,2"], ["reg.lam = -1"]),
    (["sweep", "--grid", "nosuch=1,2"], ["unknown config key 'nosuch'"]),
    (["sweep", "--grid", "reg.lam="], ["--grid 'reg.lam='"]),
    (["sweep", "--grid", "data.augment=no,yes"], ["data.augment = 'no'"]),
    (["sweep", "--model", "{root}/wrong_out.py:make", "--dataset", "digits", "--grid", "reg.lam=1,2"], ["model", "[2, 3]"]),
    (["stop", "{run}", "--timeout", "nan"], ["--timeout", "nan", "finite"]),
    (["stop", "{run}", "--timeout", "inf"], ["--timeout", "inf"]),
    (["stop", "{run}", "--timeout", "-1"], ["--timeout", "-1.0"]),
    (["show", "../x"], ["invalid run id '../x'"]),
    (["show", "20200101-000000-abcdef"], ["no run '20200101-000000-abcdef'"]),
    (["runs", "--home", "{root}/nowhere"], ["no run store at"]),
    (["set-lam", "{run}", "nan"], ["reg.lam = nan"]),
    (["export", "{run}"], ["checkpoint", "truncated"]),
    (["export", "{pickled_run}"], ["checkpoint", "weights-only"]),
    (["export", "{run}", "--format", "onnx"], ["checkpoint", "truncated"]),
    (["report", "{run}", "--figure", "allocation", "--format", "json"], ["--figure is for the png and pdf"]),
    (["report", "{run}", "--format", "json", "--out", "/proc/report.json"], ["cannot write /proc/report.json"]),
    (["report", "{run}", "--figure", "bits"], ["--figure", "invalid choice: 'bits'"]),
    (["trian"], ["invalid choice: 'trian'"]),
    (["train", "--lam", "x"], ["--lam", "invalid float value: 'x'"]),
    (["sweep"], ["--grid"]),
]
# The same checks through a real process for one case of each kind (the rest run in-process, for speed).
IN_A_PROCESS = {"train --config {root}/latin1.json", "train --model {root}/wrong_out.py:make --dataset digits",
                "train --model {root}/exits.py:make --dataset digits", "train --home {root}/a_file --dataset digits",
                "train --epochs 0,0,0", "sweep --dataset foo --grid reg.lam=1,2", "stop {run} --timeout nan",
                "export {run}", "trian"}
SUBPROCESS_CASES = [case for case in CLI_CASES if " ".join(case[0]) in IN_A_PROCESS]
assert len(SUBPROCESS_CASES) == len(IN_A_PROCESS)


def _fill(args: list[str], files: dict) -> list[str]:
    filled = []
    for arg in args:
        for key, value in files.items():
            arg = arg.replace("{" + key + "}", str(value))
        filled.append(arg)
    return filled


def _case_id(case) -> str:
    return " ".join(case[0][:3])


@pytest.mark.parametrize("args,words", CLI_CASES, ids=[_case_id(c) for c in CLI_CASES])
def test_bad_cli_input_ends_in_one_error_line_that_names_it(files, args, words, capsys, monkeypatch):
    monkeypatch.setenv("MSQ_HOME", str(files["home"]))
    try:
        code = main(_fill(args, files))
    except SystemExit as exc:       # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    line = _error_line(subprocess.CompletedProcess(args, code, out, err))
    for word in words:
        assert word in line, line


@pytest.mark.parametrize("args,words", SUBPROCESS_CASES, ids=[_case_id(c) for c in SUBPROCESS_CASES])
def test_bad_cli_input_in_a_real_process_exits_non_zero_with_one_line(files, args, words):
    line = _error_line(msq_cli(*_fill(args, files), home=files["home"]))
    for word in words:
        assert word in line, line


def test_a_train_or_sweep_that_fails_on_its_input_creates_no_run(tmp_path, capsys):
    from msq.runs import RunStore

    assert main(["train", "--model", "nosuch", "--home", str(tmp_path)]) == 2
    assert main(["sweep", "--dataset", "foo", "--grid", "reg.lam=1,2", "--home", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("error: ") == 2          # no run id printed
    assert not (tmp_path / "msq.db").exists() or RunStore(tmp_path).list_runs() == []


def test_without_the_venv_packages_the_cli_says_to_activate_it(files):
    # -S: no site-packages, so torch (or numpy) cannot be imported, as with a bare system python
    line = _error_line(msq_cli("train", "--dataset", "digits", home=files["home"], python_flags=("-S",)))
    assert "is not installed" in line and "source .venv/bin/activate" in line and "make install" in line


def test_a_closed_pipe_ends_the_command_quietly(files):
    env = {**os.environ, "MSQ_HOME": str(files["home"])}
    proc = subprocess.Popen([sys.executable, "-m", "msq", "show", files["run"], "--json"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                            # `| head` that already left
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""


def test_a_model_with_nothing_searched_trains_with_one_warning(tmp_path, files):
    result = msq_cli("train", "--model", f"{files['root']}/two_layers.py:make", "--dataset", "digits",
                     "--epochs", "0,1,0", "--threads", "1", "--quiet", "--home", str(tmp_path), home=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: no layer of model") and "quant.keep_first_last" in lines[0]
    run_id = result.stdout.split()[0]
    shown = json.loads(msq_cli("show", run_id, "--json", "--home", str(tmp_path), home=tmp_path).stdout)
    assert [e["kind"] for e in shown["events"]].count("warning") == 1
