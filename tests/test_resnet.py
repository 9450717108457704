from __future__ import annotations

import pytest
import torch

from fairreprogram.models import (
    RESNET_ARCHS,
    ResNetClassifier,
    ResNetConfig,
    freeze,
    load_torchvision_state_dict,
)

_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(prefix: str) -> list[str]:
    return [f"{prefix}.{k}" for k in _BN_KEYS]


def _torchvision_resnet18_keys() -> list[str]:
    keys = ["conv1.weight", *_bn("bn1")]
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}"
            keys += [f"{p}.conv1.weight", *_bn(f"{p}.bn1"), f"{p}.conv2.weight", *_bn(f"{p}.bn2")]
            if block == 0 and layer > 1:
                keys += [f"{p}.downsample.0.weight", *_bn(f"{p}.downsample.1")]
    return [*keys, "fc.weight", "fc.bias"]


def _torchvision_style(model: ResNetClassifier) -> dict[str, torch.Tensor]:
    prefix = "backbone."
    return {k[len(prefix) :]: v.clone() for k, v in model.state_dict().items() if k.startswith(prefix)}


@pytest.mark.parametrize("arch", RESNET_ARCHS)
@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_output_shapes(arch: str, channels: int, size: tuple[int, int]) -> None:
    stats = (0.5,) * channels
    model = ResNetClassifier(arch=arch, num_classes=3, in_channels=channels, mean=stats, std=stats).eval()
    with torch.no_grad():
        out = model(torch.rand(2, channels, *size))
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()


def test_resnet18_parameter_count_matches_torchvision() -> None:
    model = ResNetClassifier(arch="resnet18", num_classes=1000)
    assert sum(p.numel() for p in model.backbone.parameters()) == 11_689_512
    assert sum(p.numel() for p in model.parameters()) == 11_689_512


def test_resnet18_state_dict_keys_match_torchvision() -> None:
    model = ResNetClassifier(arch="resnet18")
    expected = _torchvision_resnet18_keys()
    assert len(expected) == 122
    assert list(_torchvision_style(model)) == expected
    assert set(model.state_dict()) == {f"backbone.{k}" for k in expected}


def test_load_torchvision_state_dict_accepts_matching_dict() -> None:
    source = ResNetClassifier(arch="resnet18", num_classes=1000)
    with torch.no_grad():
        source.backbone.fc.bias.fill_(0.25)
        source.backbone.bn1.running_mean.fill_(0.1)
    state = _torchvision_style(source)
    assert sorted(state) == sorted(_torchvision_resnet18_keys())
    target = ResNetClassifier(arch="resnet18", num_classes=1000)
    assert load_torchvision_state_dict(target, state) == []
    for key, value in target.backbone.state_dict().items():
        assert torch.equal(value, state[key]), key
    # The normalisation buffers are not part of the checkpoint and keep the config's values.
    assert torch.allclose(target.pixel_mean.flatten(), torch.tensor(target.config.mean))


def test_load_torchvision_state_dict_fills_missing_num_batches_tracked() -> None:
    state = _torchvision_style(ResNetClassifier(arch="resnet18"))
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    load_torchvision_state_dict(ResNetClassifier(arch="resnet18"), state)


def test_load_torchvision_state_dict_rejects_missing_and_unexpected_key() -> None:
    model = ResNetClassifier(arch="resnet18")
    state = _torchvision_style(model)
    del state["layer4.1.bn2.weight"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="state_dict does not match arch='resnet18'") as info:
        load_torchvision_state_dict(model, state)
    message = str(info.value)
    assert "missing keys ['layer4.1.bn2.weight']" in message
    assert "unexpected keys ['extra.weight']" in message


def test_load_torchvision_state_dict_rejects_wrong_shape() -> None:
    state = _torchvision_style(ResNetClassifier(arch="resnet18", num_classes=1000))
    model = ResNetClassifier(arch="resnet18", num_classes=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"shape mismatches \['fc.weight': checkpoint \(1000, 512\)"):
        load_torchvision_state_dict(model, state)
    # Nothing was loaded on failure.
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_load_torchvision_state_dict_non_strict_skips_head_only() -> None:
    source = ResNetClassifier(arch="resnet18", num_classes=1000)
    state = _torchvision_style(source)
    model = ResNetClassifier(arch="resnet18", num_classes=2)
    head = model.backbone.fc.weight.clone()
    assert load_torchvision_state_dict(model, state, strict=False) == ["fc.weight", "fc.bias"]
    assert torch.equal(model.backbone.fc.weight, head)
    assert torch.equal(model.backbone.conv1.weight, state["conv1.weight"])
    state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    with pytest.raises(ValueError, match=r"conv1\.weight"):
        load_torchvision_state_dict(model, state, strict=False)


def test_load_torchvision_state_dict_wrong_arch() -> None:
    state = _torchvision_style(ResNetClassifier(arch="resnet18"))
    with pytest.raises(ValueError, match="arch='resnet20': missing keys"):
        load_torchvision_state_dict(ResNetClassifier(arch="resnet20"), state)


def test_normalisation_buffers() -> None:
    model = ResNetClassifier(arch="resnet20", mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    buffers = dict(model.named_buffers())
    assert "pixel_mean" in buffers and "pixel_std" in buffers
    assert not any(name.startswith("pixel_") for name, _ in model.named_parameters())
    x = torch.full((1, 3, 4, 4), 0.5)
    z = model.normalize(x)
    assert torch.allclose(z[0, 0], torch.zeros(4, 4))
    assert torch.allclose(z[0, 1], torch.ones(4, 4))
    assert torch.allclose(z[0, 2], torch.full((4, 4), 0.5))


@pytest.mark.parametrize("arch", RESNET_ARCHS)
def test_save_load_round_trip(arch: str, tmp_path) -> None:
    model = ResNetClassifier(arch=arch, num_classes=2, in_channels=1, mean=(0.3,), std=(0.2,))
    model.train()
    model(torch.rand(4, 1, 32, 32))  # move the batch-norm running statistics off their defaults
    model.eval()
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "model_config.json"]
    loaded = ResNetClassifier.from_pretrained(tmp_path).eval()
    assert loaded.config == model.config
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_from_pretrained_rejects_weights_that_do_not_fit(tmp_path) -> None:
    ResNetClassifier(arch="resnet20", num_classes=2).save_pretrained(tmp_path)
    config = (tmp_path / "model_config.json").read_text().replace('"num_classes": 2', '"num_classes": 5')
    (tmp_path / "model_config.json").write_text(config)
    with pytest.raises(ValueError, match=r"shape mismatches \['backbone.fc.weight'"):
        ResNetClassifier.from_pretrained(tmp_path)


def test_from_pretrained_missing_directory(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model_config\.json"):
        ResNetClassifier.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"arch": "resnet50"}, r"arch='resnet50' is not valid; expected one of \['resnet18', 'resnet9'"),
        ({"num_classes": 1}, "num_classes=1 is not valid"),
        ({"in_channels": 0}, "in_channels=0 is not valid"),
        ({"in_channels": 1}, "mean=.* has 3 entries; expected one per channel"),
        ({"std": (0.2, 0.2)}, r"std=\(0.2, 0.2\) has 2 entries"),
        ({"std": (0.2, 0.0, 0.2)}, "std=.* is not valid; expected finite numbers > 0"),
        ({"mean": (0.2, float("nan"), 0.2)}, "mean=.* is not valid; expected finite numbers"),
    ],
)
def test_bad_config(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ResNetConfig(**options)


def test_config_accepts_lists_and_rejects_both_config_and_options() -> None:
    assert ResNetConfig(in_channels=1, mean=[0.5], std=[0.5]).mean == (0.5,)
    with pytest.raises(TypeError, match="not both"):
        ResNetClassifier(ResNetConfig(), arch="resnet9")


def test_forward_rejects_wrong_channels() -> None:
    with pytest.raises(ValueError, match=r"expected \(n, 3, H, W\)"):
        ResNetClassifier(arch="resnet9")(torch.rand(2, 1, 32, 32))


@pytest.mark.parametrize("arch", RESNET_ARCHS)
def test_gradients_reach_input_of_frozen_model(arch: str) -> None:
    model = freeze(ResNetClassifier(arch=arch))
    assert not any(p.requires_grad for p in model.parameters())
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())
