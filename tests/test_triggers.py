import json

import pytest
import torch

from fairreprogram import __version__
from fairreprogram.triggers import (
    CONFIG_NAME,
    MaskOffsetConfig,
    MaskOffsetTrigger,
    Trigger,
    TriggerConfig,
    available_triggers,
    build_trigger,
    register_trigger,
)


def test_registry_lists_and_builds_by_name():
    assert "mask_offset" in available_triggers()
    trigger = build_trigger("mask_offset", input_shape=(7,))
    assert isinstance(trigger, MaskOffsetTrigger)
    assert trigger.config.num_features == 7


def test_registry_refuses_duplicates_and_unknown_kinds():
    with pytest.raises(ValueError, match="already registered"):

        @register_trigger("mask_offset")
        class Again(Trigger):
            config_class = TriggerConfig

    with pytest.raises(ValueError, match="'nope' is not a registered trigger kind"):
        build_trigger("nope")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['colour'\]"):
        build_trigger("mask_offset", num_features=3, colour=1)


def test_fresh_mask_offset_is_identity_and_counts_parameters():
    trigger = MaskOffsetTrigger(num_features=5)
    x = torch.randn(4, 5)
    assert torch.equal(trigger(x), x)
    assert trigger.num_trainable_parameters() == 10
    assert MaskOffsetTrigger(num_features=5, learn_mask=False).num_trainable_parameters() == 5


def test_mask_is_binary_forward_with_straight_through_gradient():
    trigger = MaskOffsetTrigger(num_features=3)
    with torch.no_grad():
        trigger.mask_scores.copy_(torch.tensor([2.0, -2.0, 0.3]))
    x = torch.ones(2, 3)
    out = trigger(x)
    assert torch.equal(out, torch.tensor([[1.0, 0.0, 1.0]] * 2))
    out.sum().backward()
    sig = torch.sigmoid(trigger.mask_scores.detach())
    assert torch.allclose(trigger.mask_scores.grad, 2 * sig * (1 - sig))


def test_save_and_load_round_trip(tmp_path):
    trigger = MaskOffsetTrigger(num_features=4, mask_init=1.5)
    with torch.no_grad():
        trigger.offset.copy_(torch.arange(4.0))
    trigger.save_pretrained(tmp_path)
    text = (tmp_path / CONFIG_NAME).read_text()
    saved = json.loads(text)
    assert saved["kind"] == "mask_offset" and saved["library_version"] == __version__
    assert text == json.dumps(saved, indent=2, sort_keys=True) + "\n"
    for loader in (Trigger, MaskOffsetTrigger):
        loaded = loader.from_pretrained(tmp_path)
        assert isinstance(loaded, MaskOffsetTrigger)
        assert loaded.config == trigger.config
        for key, value in trigger.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value)


IMAGE_KINDS = {"border", "patch", "sparse"}


TEXT_KINDS = ("soft", "hard", "embedding")


def test_every_registered_config_round_trips():
    for kind in available_triggers():
        shape = (3, 16, 16) if kind in IMAGE_KINDS else (50, 8) if kind in TEXT_KINDS else (3,)
        trigger = build_trigger(kind, input_shape=shape)
        config = trigger.config
        assert type(config).from_dict(config.to_dict()) == config


def test_loading_for_other_input_size_or_kind_is_refused(tmp_path):
    MaskOffsetTrigger(num_features=4).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"built for inputs of shape \(4,\).*got inputs of shape \(5,\)"):
        Trigger.from_pretrained(tmp_path, input_shape=(5,))

    @register_trigger("test_other_kind")
    class Other(Trigger):
        config_class = MaskOffsetConfig

    with pytest.raises(ValueError, match="holds a trigger of kind 'mask_offset'"):
        Other.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a saved trigger"):
        Trigger.from_pretrained(tmp_path / "missing")


def test_input_shape_mismatch_at_forward():
    trigger = MaskOffsetTrigger(num_features=4)
    with pytest.raises(ValueError, match=r"shape \(4,\).*got inputs of shape \(6,\)"):
        trigger(torch.zeros(2, 6))


def test_bad_config_values():
    with pytest.raises(ValueError, match="num_features=0 is not valid"):
        MaskOffsetTrigger(num_features=0)
