"""RunConfig: JSON round trip and an error that names field, value and allowed range for every check."""
import json
import subprocess
import sys

import pytest

from msq.config import RunConfig
from msq.errors import ConfigError


def test_json_round_trip_is_exact():
    cfg = RunConfig(method="uniform", model="resnet20", uniform_bits=3,
                    reg={"lam": 0.5, "norm": "uniform"}, prune={"target_avg_bits": 3.0},
                    quant={"exclude": ["fc"], "act_bits": 4}, multibit={"bits": [2, 4]})
    again = RunConfig.from_json(cfg.to_json())
    assert again == cfg and again.to_dict() == cfg.to_dict()
    assert json.loads(cfg.to_json())["reg"]["lam"] == 0.5


def test_replace_with_dotted_keys():
    cfg = RunConfig().replace(**{"reg.lam": 2.5, "train.seed": 3})
    assert cfg.reg.lam == 2.5 and cfg.train.seed == 3
    with pytest.raises(ConfigError, match="unknown config key 'reg.lambda'"):
        RunConfig().replace(**{"reg.lambda": 1})


INVALID = [
    ({"method": "csq"}, r"run.method = 'csq' is invalid: allowed one of 'msq', 'uniform', 'bsq', 'multibit'"),
    ({"model": ""}, r"run.model = '' is invalid"),
    ({"uniform_bits": 0}, r"run.uniform_bits = 0 is invalid: allowed an integer in \[1, 16\]"),
    ({"quant": {"init_bits": 9}}, r"quant.init_bits = 9 is invalid: allowed an integer in \[2, 8\]"),
    ({"quant": {"fixed_bits": 1}}, r"quant.fixed_bits = 1 is invalid"),
    ({"quant": {"act_bits": 1}}, r"quant.act_bits = 1 is invalid: allowed an integer in \[2, 8\]"),
    ({"quant": {"exclude": "fc"}}, r"quant.exclude = 'fc' is invalid: allowed a list"),
    ({"quant": {"keep_first_last": "yes"}}, r"quant.keep_first_last = 'yes' is invalid"),
    ({"quant": {"act_clip_init": 0}}, r"quant.act_clip_init = 0 is invalid"),
    ({"reg": {"lam": -1}}, r"reg.lam = -1 is invalid: allowed a number in \[0.0, 1000000.0\]"),
    ({"reg": {"lam": float("nan")}}, r"reg.lam = nan is invalid"),
    ({"reg": {"norm": "l2"}}, r"reg.norm = 'l2' is invalid: allowed one of 'memory', 'uniform'"),
    ({"reg": {"schedule": "cosine"}}, r"reg.schedule = 'cosine' is invalid"),
    ({"reg": {"warmup_steps": -1}}, r"reg.warmup_steps = -1 is invalid"),
    ({"prune": {"every": 0}}, r"prune.every = 0 is invalid: allowed an integer >= 1"),
    ({"prune": {"threshold": 1.5}}, r"prune.threshold = 1.5 is invalid: allowed a number in \[0.0, 1.0\]"),
    ({"prune": {"min_bits": 0}}, r"prune.min_bits = 0 is invalid"),
    ({"prune": {"target_avg_bits": 0.5}}, r"prune.target_avg_bits = 0.5 is invalid"),
    ({"hessian": {"probes": 0}}, r"hessian.probes = 0 is invalid"),
    ({"hessian": {"batches": 0}}, r"hessian.batches = 0 is invalid"),
    ({"hessian": {"batch_size": 0}}, r"hessian.batch_size = 0 is invalid"),
    ({"hessian": {"enabled": 1}}, r"hessian.enabled = 1 is invalid: allowed true or false"),
    ({"train": {"search_epochs": -1}}, r"train.search_epochs = -1 is invalid"),
    ({"train": {"batch_size": 0}}, r"train.batch_size = 0 is invalid"),
    ({"train": {"optimizer": "lion"}}, r"train.optimizer = 'lion' is invalid: allowed one of 'sgd', 'adam'"),
    ({"train": {"lr": 0}}, r"train.lr = 0 is invalid: allowed a number in \(0.0, 10.0\]"),
    ({"train": {"search_lr": -1.0}}, r"train.search_lr = -1.0 is invalid"),
    ({"train": {"momentum": 2}}, r"train.momentum = 2 is invalid"),
    ({"train": {"weight_decay": -0.1}}, r"train.weight_decay = -0.1 is invalid"),
    ({"train": {"seed": -1}}, r"train.seed = -1 is invalid"),
    ({"train": {"device": "gpu"}}, r"train.device = 'gpu' is invalid: allowed 'cpu', 'cuda' or 'cuda:N'"),
    ({"train": {"log_every": 0}}, r"train.log_every = 0 is invalid"),
    ({"train": {"nproc": 0}}, r"train.nproc = 0 is invalid"),
    ({"train": {"nproc": 2, "device": "cuda:1"}}, r"train.device = 'cuda:1' is invalid: allowed 'cuda' or 'cpu'"),
    ({"train": {"threads": -2}}, r"train.threads = -2 is invalid"),
    ({"data": {"name": ""}}, r"data.name = '' is invalid"),
    ({"data": {"val_fraction": 0}}, r"data.val_fraction = 0 is invalid"),
    ({"data": {"split_seed": -3}}, r"data.split_seed = -3 is invalid"),
    ({"data": {"limit": 0}}, r"data.limit = 0 is invalid"),
    ({"multibit": {"bits": []}}, r"multibit.bits = \[\] is invalid"),
    ({"multibit": {"bits": [2, 2]}}, r"multibit.bits = \[2, 2\] is invalid"),
    ({"multibit": {"act_bits": "half"}}, r"multibit.act_bits = 'half' is invalid"),
    ({"multibit": {"coreset_fraction": 0}}, r"multibit.coreset_fraction = 0 is invalid"),
    ({"multibit": {"reselect_every": 0}}, r"multibit.reselect_every = 0 is invalid"),
    ({"multibit": {"selection": "best"}}, r"multibit.selection = 'best' is invalid"),
    ({"multibit": {"score": "grand"}}, r"multibit.score = 'grand' is invalid"),
    ({"multibit": {"bias_correction": "on"}}, r"multibit.bias_correction = 'on' is invalid"),
    ({"multibit": {"shared_bn": None}}, r"multibit.shared_bn = None is invalid"),
    ({"multibit": {"eval_bits": [5, 5]}}, r"multibit.eval_bits = \[5, 5\] is invalid"),
    ({"multibit": {"eval_bits": [0]}}, r"multibit.eval_bits = \[0\] is invalid: allowed a list of distinct"),
    ({"multibit": {"calibration": "minmax"}}, r"multibit.calibration = 'minmax' is invalid: allowed one of 'mse', 'max'"),
    ({"bsq": {"decay": -1}}, r"bsq.decay = -1 is invalid"),
    ({"bsq": {"requant_every": 0}}, r"bsq.requant_every = 0 is invalid"),
    ({"bsq": {"max_bits": 20}}, r"bsq.max_bits = 20 is invalid"),
    ({"bsq": {"search_lr": 0}}, r"bsq.search_lr = 0 is invalid: allowed a number in \(0.0, 10.0\]"),
    ({"train": {"lrr": 1}}, r"train has unknown field\(s\) lrr: allowed fields are"),
    ({"reg": 3}, r"reg must be a JSON object"),
]


@pytest.mark.parametrize("changes,message", INVALID, ids=[m.split(" ")[0] for _, m in INVALID])
def test_every_invalid_value_is_rejected_with_field_value_and_range(changes, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(changes)


def test_invalid_json_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.from_json("{lam: 1")


def test_import_msq_does_not_import_streamlit_or_torch_for_light_modules():
    code = ("import sys, msq, msq.config, msq.runs.ids, msq.accounting; "
            "bad = [m for m in ('streamlit', 'plotly', 'torch') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = "import sys, msq, msq.quant, msq.training.trainer; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_field_of_any_type_is_left_to_its_sections_own_check():
    assert RunConfig().replace(**{"multibit.act_bits": None}).multibit.act_bits is None
    assert RunConfig().replace(**{"multibit.act_bits": "none"}).multibit.act_bits is None
    with pytest.raises(ConfigError, match="multibit.act_bits"):
        RunConfig().replace(**{"multibit.act_bits": "many"})
