"""The model registry: every sample model at every supported shape, exact parameter counts of the
reference architectures, tv:NAME, user files, checkpoints, and every documented error."""
import pytest
import torch
from torch import nn

from msq.errors import ConfigError, ModelLoadError, UnknownNameError
from sample_models import create_model, list_models, load_checkpoint, model_info


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


SHAPES = [(8, 1), (28, 1), (32, 1), (8, 3), (28, 3), (32, 3)]   # (image_size, in_channels)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("image_size,in_channels", SHAPES)
def test_every_model_gives_finite_logits_at_every_shape(name, image_size, in_channels):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_channels=in_channels, image_size=image_size).eval()
    logits = model(torch.randn(3, in_channels, image_size, image_size))
    assert logits.shape == (3, 7)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", list_models())
def test_every_conv_and_linear_is_called_as_a_module(name):
    """The quantizer swaps Conv2d/Linear modules, so each must run through its own forward exactly
    once per call (no functional shortcut like nn.MultiheadAttention's out_proj, no shared layers)."""
    model = create_model(name, num_classes=10, in_channels=1, image_size=28)
    calls = {}
    for fqn, module in model.named_modules():
        if type(module) in (nn.Conv2d, nn.Linear):
            calls[fqn] = 0
            module.register_forward_hook(lambda m, i, o, fqn=fqn: calls.__setitem__(fqn, calls[fqn] + 1))
    model(torch.randn(2, 1, 28, 28))
    assert calls and all(count == 1 for count in calls.values()), calls
    assert len(list(model.named_modules(remove_duplicate=False))) == len(list(model.named_modules()))


@pytest.mark.parametrize("name", list_models())
def test_every_model_quantizes_trains_one_step_and_converts(name):
    from msq.config import QuantConfig
    from msq.quant import convert_, quantizable_layers, quantize_

    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_channels=1, image_size=8)
    n_layers = len(quantizable_layers(model, QuantConfig()))
    assert len(quantize_(model, QuantConfig(init_bits=4))) == n_layers
    x, y = torch.randn(8, 1, 8, 8), torch.arange(8) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    convert_(model)
    assert torch.isfinite(model.eval()(x)).all()


def test_same_seed_builds_identical_weights():
    for name in list_models():
        torch.manual_seed(3)
        a = create_model(name).state_dict()
        torch.manual_seed(3)
        b = create_model(name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_reference_parameter_counts():
    # LeNet-5 at 28x28: 156 + 2,416 + 48,120 + 10,164 + 850
    assert n_params(create_model("lenet5", num_classes=10, in_channels=1, image_size=28)) == 61_706
    resnet20 = n_params(create_model("resnet20", num_classes=10, in_channels=3, image_size=32))
    assert resnet20 == 269_722 and 260_000 <= resnet20 <= 280_000     # "0.27M" in He et al. 2016
    assert n_params(create_model("resnet20", num_classes=10, in_channels=3, image_size=32, shortcut="B")) == 272_474
    assert n_params(create_model("tinycnn", num_classes=10, in_channels=1, image_size=8)) == 3_818


def test_resnet20_option_a_has_no_shortcut_weights():
    model = create_model("resnet20", num_classes=10, in_channels=3, image_size=32)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 and all(c.kernel_size == (3, 3) for c in convs)


def test_vit_tiny_uses_no_multihead_attention():
    model = create_model("vit_tiny", num_classes=10, in_channels=3, image_size=32)
    assert not any(isinstance(m, nn.MultiheadAttention) for m in model.modules())
    assert isinstance(model.blocks[0].attn.qkv, nn.Linear) and isinstance(model.blocks[0].attn.proj, nn.Linear)


def test_model_info_describes_every_model():
    for name in list_models():
        assert model_info(name)["description"]
    assert model_info("tv:resnet18")["source"] == "torchvision"


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(UnknownNameError, match="unknown model 'lenet6'.*lenet5.*resnet20.*tv:NAME"):
        create_model("lenet6")


def test_unknown_model_kwarg_names_the_allowed_ones():
    with pytest.raises(ConfigError, match="'depth' not accepted by model 'resnet20'.*shortcut"):
        create_model("resnet20", depth=32)
    with pytest.raises(ConfigError, match="shortcut = 'C' is invalid"):
        create_model("resnet20", shortcut="C")
    with pytest.raises(ConfigError, match="patch_size = 3 is invalid for image_size 28"):
        create_model("vit_tiny", image_size=28, patch_size=3)


# -- torchvision ---------------------------------------------------------------------------------
def test_torchvision_resnet18_with_one_channel_and_ten_classes():
    torch.manual_seed(0)
    model = create_model("tv:resnet18", num_classes=10, in_channels=1, image_size=28).eval()
    assert model.conv1.in_channels == 1 and model.fc.out_features == 10
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_torchvision_unknown_name_and_pretrained_weights_are_refused():
    with pytest.raises(UnknownNameError, match="unknown torchvision model 'tv:resnet19'.*resnet18"):
        create_model("tv:resnet19")
    with pytest.raises(ModelLoadError, match="never downloaded"):
        create_model("tv:resnet18", weights="DEFAULT")


# -- user files ----------------------------------------------------------------------------------
USER_FILE = '''
import torch.nn as nn

def make_model(num_classes, in_channels, width=4):
    return nn.Sequential(nn.Conv2d(in_channels, width, 3), nn.Flatten(), nn.LazyLinear(num_classes))

def plain():
    return nn.Linear(64, 10)

def broken(num_classes):
    raise RuntimeError("out of ideas")

def not_a_model():
    return 42
'''


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_net.py"
    path.write_text(USER_FILE)
    return path


def test_user_file_factory_gets_the_arguments_it_accepts(user_file):
    model = create_model(f"{user_file}:make_model", num_classes=5, in_channels=3, image_size=8, width=6)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 5)
    assert model[0].out_channels == 6
    assert isinstance(create_model(f"{user_file}:plain"), nn.Linear)


@pytest.mark.parametrize("suffix,match", [
    (":missing", "my_net.py has no function 'missing': it defines broken, make_model, not_a_model, plain"),
    (":broken", r"my_net.py:broken\(num_classes\) raised RuntimeError: out of ideas"),
    (":not_a_model", "returned int, not a torch.nn.Module"),
    ("", "names no factory"),
])
def test_user_file_errors(user_file, suffix, match):
    with pytest.raises(ModelLoadError, match=match):
        create_model(f"{user_file}{suffix}")


def test_user_file_errors_for_missing_file_bad_import_and_unknown_kwarg(tmp_path, user_file):
    with pytest.raises(ModelLoadError, match="model file .*nope.py' not found"):
        create_model(f"{tmp_path}/nope.py:make_model")
    bad = tmp_path / "bad.py"
    bad.write_text("import not_a_real_module_xyz\n")
    with pytest.raises(ModelLoadError, match="importing .*bad.py failed with ModuleNotFoundError"):
        create_model(f"{bad}:f")
    with pytest.raises(ConfigError, match="'depth' not accepted by model .*width"):
        create_model(f"{user_file}:make_model", depth=3)


# -- checkpoints ---------------------------------------------------------------------------------
def test_checkpoint_round_trip_and_wrapped_forms(tmp_path):
    torch.manual_seed(0)
    source = create_model("lenet5")
    for i, payload in enumerate([source.state_dict(), {"state_dict": source.state_dict()},
                                 {"model": source.state_dict(), "epoch": 3},
                                 {f"module.{k}": v for k, v in source.state_dict().items()}]):
        path = tmp_path / f"ckpt{i}.pt"
        torch.save(payload, path)
        torch.manual_seed(1)
        target = create_model("lenet5", checkpoint=str(path))
        assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


def test_checkpoint_errors(tmp_path):
    model = create_model("lenet5")
    with pytest.raises(ModelLoadError, match="checkpoint '.*absent.pt' not found"):
        load_checkpoint(model, tmp_path / "absent.pt")
    wrong_classes = tmp_path / "wrong.pt"
    torch.save(create_model("lenet5", num_classes=3).state_dict(), wrong_classes)
    with pytest.raises(ModelLoadError, match=r"shape mismatch .*fc3.weight \(3, 84\) vs \(10, 84\)"):
        load_checkpoint(model, wrong_classes)
    other = tmp_path / "other.pt"
    torch.save(create_model("tinycnn").state_dict(), other)
    with pytest.raises(ModelLoadError, match=r"missing keys fc1.weight, fc1.bias, fc2.weight \(\+3 more\); "
                                             r"unexpected keys fc.weight"):
        load_checkpoint(model, other)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="is not a weights-only state_dict"):
        load_checkpoint(model, junk)
    pickled_object = tmp_path / "object.pt"
    torch.save({"cfg": object()}, pickled_object)
    with pytest.raises(ModelLoadError, match="is not a weights-only state_dict"):
        load_checkpoint(model, pickled_object)
