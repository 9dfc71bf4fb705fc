"""Sample models for MSQ Studio and the registry that builds any model by name.

    from sample_models import create_model, list_models
    model = create_model("resnet20", num_classes=10, in_channels=3, image_size=32)
    model = create_model("tv:resnet18", num_classes=10, in_channels=1, image_size=28)
    model = create_model("my_net.py:make_model", checkpoint="float.pt")
"""
from sample_models import lenet, mlp, mobilenet, resnet_cifar, tinycnn, vit  # noqa: F401  (registers them)
from sample_models.loading import load_checkpoint
from sample_models.registry import create_model, list_models, model_info, register_model

__all__ = ["create_model", "list_models", "load_checkpoint", "model_info", "register_model"]
