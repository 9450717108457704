import pytest
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fairreprogram.triggers import (
    BorderConfig,
    BorderTrigger,
    PatchConfig,
    PatchTrigger,
    SparseConfig,
    SparseTrigger,
    Trigger,
    available_triggers,
    build_trigger,
    render_trigger_examples,
)
from fairreprogram.triggers._image import CORNERS

KINDS = {"border": BorderTrigger, "patch": PatchTrigger, "sparse": SparseTrigger}
MASK_BUFFERS = {"border": "frame_mask", "patch": "patch_mask"}


def _randomise(trigger: Trigger, scale: float = 3.0) -> None:
    with torch.no_grad():
        for p in trigger.parameters():
            p.copy_(scale * torch.randn_like(p))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_registry_builds_each_kind_from_input_shape(kind):
    assert kind in available_triggers()
    trigger = build_trigger(kind, input_shape=(3, 16, 16))
    assert isinstance(trigger, KINDS[kind])
    assert trigger.input_shape() == (3, 16, 16)
    assert KINDS[kind].shape_options((1, 9, 12)) == {"channels": 1, "height": 9, "width": 12}
    with pytest.raises(ValueError, match=r"input_shape must be \(C, H, W\).*got \(7,\)"):
        build_trigger(kind, input_shape=(7,))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_save_and_load_round_trip_gives_identical_outputs(kind, tmp_path):
    trigger = build_trigger(kind, input_shape=(3, 16, 16))
    _randomise(trigger)
    trigger.save_pretrained(tmp_path / kind)
    loaded = Trigger.from_pretrained(tmp_path / kind, input_shape=(3, 16, 16))
    assert type(loaded) is KINDS[kind]
    assert loaded.config == trigger.config
    x = torch.rand(4, 3, 16, 16)
    assert torch.equal(loaded(x), trigger(x))


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_output_stays_in_unit_range(kind, scale):
    trigger = build_trigger(kind, input_shape=(3, 16, 16))
    fresh = trigger(torch.rand(4, 3, 16, 16))
    assert fresh.min() >= 0 and fresh.max() <= 1
    with torch.no_grad():
        for p in trigger.parameters():
            p.fill_(scale)
    out = trigger(torch.rand(4, 3, 16, 16))
    assert torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1


def test_border_centre_is_resized_input_and_only_frame_changes():
    trigger = BorderTrigger(channels=3, height=16, width=20, border=3)
    x = torch.rand(4, 3, 16, 20)
    before = trigger(x)
    expected = F.interpolate(x, size=(10, 14), mode="bilinear", align_corners=False, antialias=False)
    assert torch.allclose(before[:, :, 3:13, 3:17], expected.clamp(0, 1))
    _randomise(trigger)
    after = trigger(x)
    assert torch.equal(after[:, :, 3:13, 3:17], before[:, :, 3:13, 3:17])
    frame = trigger.frame_mask.bool().expand_as(after[0])
    assert (after != before)[:, frame].all()
    assert torch.equal(after[0][frame], torch.sigmoid(trigger.pixels.detach())[frame])
    assert trigger.num_trainable_parameters() == 3 * (16 * 20 - 10 * 14)  # the frame only


def test_border_too_wide_for_image_raises():
    with pytest.raises(ValueError, match="image of 8x8 is too small for a border of 4"):
        BorderConfig(channels=3, height=8, width=8, border=4)
    with pytest.raises(ValueError, match="border=0"):
        BorderConfig(border=0)
    BorderConfig(channels=3, height=9, width=9, border=4)


@pytest.mark.parametrize("corner", CORNERS)
def test_patch_replaces_exactly_its_corner(corner):
    h, w, s = 10, 13, 4
    trigger = PatchTrigger(channels=3, height=h, width=w, size=s, corner=corner)
    _randomise(trigger)
    x = torch.rand(2, 3, h, w)
    rows = slice(0, s) if corner.startswith("top") else slice(h - s, h)
    cols = slice(0, s) if corner.endswith("left") else slice(w - s, w)
    expected = x.clone()
    expected[:, :, rows, cols] = torch.sigmoid(trigger.pixels.detach())
    out = trigger(x)
    assert torch.equal(out, expected)
    changed = (out != x).any(dim=1)
    inside = torch.zeros(h, w, dtype=torch.bool)
    inside[rows, cols] = True
    assert not changed[:, ~inside].any()
    assert trigger.num_trainable_parameters() == 3 * s * s


def test_patch_options_are_checked():
    with pytest.raises(ValueError, match="too small for a patch of size=9"):
        PatchConfig(channels=1, height=8, width=12, size=9)
    with pytest.raises(ValueError, match="corner='middle'"):
        PatchConfig(corner="middle")
    PatchConfig(channels=1, height=8, width=12, size=8)


def test_sparse_changes_exactly_k_pixels_with_straight_through_gradient():
    trigger = SparseTrigger(channels=3, height=16, width=12, fraction=0.1)
    k = round(0.1 * 16 * 12)
    assert trigger.config.num_pixels == k
    with torch.no_grad():
        trigger.pixels.fill_(20.0)  # sigmoid ~ 1: every selected pixel differs from x < 1
    x = 0.9 * torch.rand(2, 3, 16, 12)
    out = trigger(x)
    changed = (out != x).any(dim=1)
    assert changed.sum(dim=(1, 2)).tolist() == [k, k]
    top = torch.topk(trigger.scores.detach(), k).indices
    assert set(changed[0].flatten().nonzero().flatten().tolist()) == set(top.tolist())
    (out * torch.randn_like(out)).sum().backward()
    assert trigger.scores.grad is not None
    assert trigger.scores.grad.abs().sum() > 0
    assert trigger.num_trainable_parameters() == 16 * 12 + 3 * 16 * 12


def test_sparse_fraction_is_checked_and_keeps_at_least_one_pixel():
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="fraction="):
            SparseConfig(fraction=bad)
    assert SparseConfig(height=4, width=4, fraction=0.01).num_pixels == 1
    assert SparseConfig(height=4, width=4, fraction=1.0).num_pixels == 16


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("shape", [(1, 12, 20), (3, 20, 12)])
def test_any_channel_count_and_non_square_images(kind, shape):
    trigger = build_trigger(kind, input_shape=shape)
    _randomise(trigger)
    out = trigger(torch.rand(3, *shape))
    assert out.shape == (3, *shape)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("bad", [(3, 16, 17), (1, 16, 16)])
def test_wrong_input_shape_raises_naming_both_shapes(kind, bad):
    trigger = build_trigger(kind, input_shape=(3, 16, 16))
    with pytest.raises(ValueError, match=r"\(3, 16, 16\).*" + r"\(" + ", ".join(map(str, bad)) + r"\)"):
        trigger(torch.rand(2, *bad))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_masks_are_buffers_that_move_with_the_module(kind):
    trigger = build_trigger(kind, input_shape=(3, 16, 16))
    names = dict(trigger.named_buffers())
    params = dict(trigger.named_parameters())
    if kind in MASK_BUFFERS:
        name = MASK_BUFFERS[kind]
        assert name in names and name in trigger.state_dict() and name not in params
    trigger.to(torch.float64)
    assert all(t.dtype == torch.float64 for t in trigger.state_dict().values())
    assert trigger(torch.rand(2, 3, 16, 16, dtype=torch.float64)).dtype == torch.float64
    trigger.to("meta")
    assert all(t.device.type == "meta" for t in trigger.state_dict().values())


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("channels", [1, 3])
def test_plot_and_render_examples(kind, channels, tmp_path):
    trigger = build_trigger(kind, input_shape=(channels, 16, 16))
    _randomise(trigger)
    figure = Figure()
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    trigger.plot(ax)
    assert len(ax.images) == 1
    assert kind in ax.get_title()
    path = render_trigger_examples(trigger, torch.rand(10, channels, 16, 16), tmp_path / "out" / "t.png")
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["t.png"]


def test_render_examples_refuses_non_image_batches(tmp_path):
    trigger = build_trigger("patch", input_shape=(3, 16, 16))
    with pytest.raises(ValueError, match="shape"):
        render_trigger_examples(trigger, torch.rand(3, 16, 16), tmp_path / "t.png")
