"""Help text lives once, on the config fields: the launch form and ``python -m msq train --help`` show it."""
import argparse
import subprocess
import sys

import pytest

from dashboard.components import launch_form as lf
from msq.cli import train
from msq.config import all_field_help, config_keys, field_help
from msq.errors import ConfigError
from msq.methods import list_methods


def _train_help(monkeypatch) -> str:
    """``train --help`` as one line of words (wide columns, so argparse breaks no text)."""
    monkeypatch.setenv("COLUMNS", "2000")
    subparsers = argparse.ArgumentParser(prog="msq").add_subparsers()
    train.register(subparsers)
    return " ".join(subparsers.choices["train"].format_help().split())


def test_every_field_the_form_or_the_cli_shows_has_help():
    shown = list(lf.LABELS) + list(train.FLAG_KEYS.values())
    assert set(shown) <= set(config_keys())
    assert [key for key in shown if not field_help(key).strip()] == []


def test_field_help_reads_the_dataclass_metadata_by_dotted_key():
    assert field_help("reg.lam").startswith("λ scales the L1 penalty")
    assert "sign included" in field_help("uniform_bits")
    assert field_help("quant") == ""                         # a section, not a field with help
    for key in ("reg.lambda", "nosuch.lam", "nosuch"):
        with pytest.raises(ConfigError, match=f"unknown config key '{key}'"):
            field_help(key)


def test_the_launch_form_shows_the_fields_own_help():
    assert lf.HELP == all_field_help()
    assert lf.HELP["prune.threshold"] == field_help("prune.threshold")


def test_train_help_shows_each_config_flags_field_help(monkeypatch):
    text = _train_help(monkeypatch)
    assert f"--lam LAM {field_help('reg.lam')} (default 32.0)" in text
    for flag, key in train.FLAG_KEYS.items():
        assert field_help(key) in text, flag
    assert "86.6% vs 35.1%" in text                          # a % in a field's help survives argparse
    assert "Registered: " + ", ".join(list_methods()) + "." in text
    assert "--epochs EPOCHS epochs as PRETRAIN,SEARCH,FINETUNE" in text   # flags with no config key keep theirs


def test_building_the_cli_imports_no_torch():
    code = "import sys; from msq.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
