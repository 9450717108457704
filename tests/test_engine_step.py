import pytest
import torch
import torch.nn.functional as F

from fairreprogram.engine import Adversary, Criterion, combine_gradients, minmax_step, parse_criterion
from fairreprogram.models import ReprogrammedModel
from fairreprogram.triggers import MaskOffsetTrigger
from fairreprogram.utils import as_class_logits


def test_parse_criterion_accepts_names_and_aliases():
    assert parse_criterion("dp") is Criterion.DEMOGRAPHIC_PARITY
    assert parse_criterion("equalized_odds") is Criterion.EQUALIZED_ODDS
    with pytest.raises(ValueError, match="criterion='parity' is not valid"):
        parse_criterion("parity")


def test_binary_eo_features_match_the_original_layout():
    adv = Adversary(num_classes=2, num_groups=2, criterion="eo", hidden_sizes=())
    logits = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    y = torch.tensor([1, 0])
    feats = adv.features(logits, y)
    s = torch.softmax(logits, dim=1)[:, 1:]  # temperature starts at 0 -> factor 1
    yf = y.float().unsqueeze(1)
    expected = torch.cat([s, s * (1 - yf), s * yf, yf], dim=1)
    assert torch.allclose(feats, expected)


def test_feature_widths_for_dp_multiclass_groups_and_logits():
    dp = Adversary(num_classes=2, num_groups=3, criterion="dp")
    assert dp.features(torch.randn(5, 2)).shape == (5, 1)
    assert dp(torch.randn(5, 2)).shape == (5, 3)
    multi = Adversary(num_classes=4, num_groups=2, criterion="eo", use_logits=True)
    y = torch.randint(0, 4, (5,))
    assert multi.features(torch.randn(5, 4), y).shape == (5, 4 + 16 + 4 + 4)
    assert multi(torch.randn(5, 4), y).shape == (5, 2)
    with pytest.raises(ValueError, match="needs a sensitive attribute with at least 2 groups"):
        Adversary(num_classes=2, num_groups=1)
    with pytest.raises(ValueError, match="y=None is not valid"):
        multi(torch.randn(5, 4))


def test_single_logit_models_are_handled():
    logits = torch.tensor([0.3, -1.2])
    two = as_class_logits(logits)
    assert torch.allclose(torch.softmax(two, 1)[:, 1], torch.sigmoid(logits))


def test_combine_gradients_projects_out_the_adversary_direction():
    g_task = torch.tensor([1.0, 1.0, 0.0])
    g_adv = torch.tensor([2.0, 0.0, 0.0])
    projected = combine_gradients(g_task, g_adv, lam=0.0)
    assert torch.allclose(projected, torch.tensor([0.0, 1.0, 0.0]))
    assert torch.dot(projected, g_adv) == 0
    full = combine_gradients(g_task, g_adv, lam=0.5)
    assert torch.allclose(full, torch.tensor([-1.0, 1.0, 0.0]))
    plain = combine_gradients(g_task, g_adv, lam=0.5, project=False)
    assert torch.allclose(plain, g_task - 0.5 * g_adv)
    # A vanishing adversary gradient must not produce NaN.
    assert torch.isfinite(combine_gradients(g_task, torch.zeros(3), lam=1.0)).all()


def _setup(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    trigger = MaskOffsetTrigger(num_features=4)
    with torch.no_grad():
        trigger.offset.normal_()
    predictor = ReprogrammedModel(trigger, model)
    adversary = Adversary(num_classes=2, num_groups=2, criterion="eo")
    x = torch.randn(32, 4)
    y = torch.randint(0, 2, (32,))
    z = torch.randint(0, 2, (32,))
    return model, trigger, predictor, adversary, (x, y, z)


def test_step_updates_match_a_manual_computation():
    _, trigger, predictor, adversary, (x, y, z) = _setup()
    params = [p for p in trigger.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1)
    adv_opt = torch.optim.SGD(adversary.parameters(), lr=0.1)
    before = [p.detach().clone() for p in params]

    # Manual reference on copies.
    import copy

    adv_ref = copy.deepcopy(adversary)
    logits = predictor(x)
    adv_loss0 = adv_ref.loss(logits.detach(), y, z)
    grads = torch.autograd.grad(adv_loss0, list(adv_ref.parameters()))
    with torch.no_grad():
        for p, g in zip(adv_ref.parameters(), grads, strict=True):
            p -= 0.1 * g
    task = F.cross_entropy(logits, y)
    adv = adv_ref.loss(logits, y, z)
    g_task = torch.cat([g.reshape(-1) for g in torch.autograd.grad(task, params, retain_graph=True)])
    g_adv = torch.cat([g.reshape(-1) for g in torch.autograd.grad(adv, params)])
    direction = g_task - (g_task @ g_adv) / (g_adv @ g_adv + 1e-12) * g_adv - 2.0 * g_adv
    expected = torch.cat([b.reshape(-1) for b in before]) - 0.1 * direction

    losses = minmax_step(
        predictor=predictor,
        params=params,
        optimizer=opt,
        batch=(x, y, z),
        adversary=adversary,
        adversary_optimizer=adv_opt,
        lam=2.0,
    )
    after = torch.cat([p.detach().reshape(-1) for p in params])
    assert torch.allclose(after, expected, atol=1e-6)
    for p, q in zip(adversary.parameters(), adv_ref.parameters(), strict=True):
        assert torch.allclose(p, q)
    assert losses.task_loss == pytest.approx(float(task.detach()))
    assert losses.adversary_loss == pytest.approx(float(adv.detach()))
    assert losses.objective == pytest.approx(float(task.detach()) - 2.0 * float(adv.detach()))


def test_projection_off_uses_one_combined_gradient_and_model_stays_frozen():
    model, trigger, predictor, adversary, batch = _setup(1)
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    params = [p for p in trigger.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1)
    adv_opt = torch.optim.SGD(adversary.parameters(), lr=0.0 + 1e-9)
    before = torch.cat([p.detach().reshape(-1) for p in params])
    minmax_step(
        predictor=predictor,
        params=params,
        optimizer=opt,
        batch=batch,
        adversary=adversary,
        adversary_optimizer=adv_opt,
        lam=1.0,
        project=False,
    )
    after = torch.cat([p.detach().reshape(-1) for p in params])
    assert not torch.equal(before, after)
    for key, value in model.state_dict().items():
        assert torch.equal(value, frozen[key])
    assert all(p.grad is None for p in model.parameters())


def test_step_without_adversary_is_plain_erm():
    model, _, _, _, (x, y, z) = _setup(2)
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.SGD(params, lr=0.5)
    first = minmax_step(predictor=model, params=params, optimizer=opt, batch=(x, y, z))
    for _ in range(20):
        last = minmax_step(predictor=model, params=params, optimizer=opt, batch=(x, y, z))
    assert last.task_loss < first.task_loss
    assert first.adversary_loss != first.adversary_loss  # NaN without an adversary


def test_non_finite_gradient_skips_the_update():
    _, trigger, predictor, _, (x, y, z) = _setup(3)
    params = [p for p in trigger.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1)
    before = torch.cat([p.detach().reshape(-1) for p in params])
    losses = minmax_step(
        predictor=predictor, params=params, optimizer=opt, batch=(x, y, z), loss_scale=float("inf")
    )
    assert losses.skipped
    assert torch.equal(before, torch.cat([p.detach().reshape(-1) for p in params]))
