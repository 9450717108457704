"""The modality-agnostic engine tunes image triggers for a frozen ResNet unchanged."""

import pytest
import torch
from torch.utils.data import TensorDataset

from fairreprogram.engine import Reprogrammer
from fairreprogram.models import ResNetClassifier
from fairreprogram.triggers import build_trigger


@pytest.mark.parametrize("kind", ["border", "patch", "sparse"])
def test_image_trigger_tunes_against_a_frozen_resnet(kind):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(48, 3, 16, 16, generator=g)
    y = torch.randint(0, 2, (48,), generator=g)
    z = torch.randint(0, 2, (48,), generator=g)
    data = TensorDataset(x, y, z)
    torch.manual_seed(0)
    model = ResNetClassifier(arch="resnet20", num_classes=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trigger = build_trigger(kind, input_shape=(3, 16, 16))
    start = {k: v.clone() for k, v in trigger.state_dict().items()}
    rp = Reprogrammer(model, trigger, criterion="eo", lam=1.0, epochs=2, batch_size=16, selection="last")
    deployed = rp.fit(data, data, progress=False)
    assert deployed(x[:4]).shape == (4, 2)
    assert any(not torch.equal(v, start[k]) for k, v in trigger.state_dict().items())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
