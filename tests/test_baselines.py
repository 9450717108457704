import torch

from fairreprogram.baselines import train_adv_in, train_adv_post, train_erm
from fairreprogram.engine import evaluate_model
from fairreprogram.models import MLPClassifier


def test_erm_learns(task):
    torch.manual_seed(1)
    model = MLPClassifier(in_features=6, hidden_sizes=(16,))
    before = evaluate_model(model, task.val).overall["accuracy"]
    result = train_erm(model, task.train, task.val, epochs=5, lr=1e-2, progress=False)
    after = evaluate_model(model, task.val).overall["accuracy"]
    assert after > max(before, 0.7)
    assert result.adversary is None
    assert result.best_val["accuracy"] == max(h["val"]["accuracy"] for h in result.history)


def test_adv_post_fine_tunes_a_copy_and_cuts_bias(task):
    before = {k: v.clone() for k, v in task.base.state_dict().items()}
    start = evaluate_model(task.base, task.test).overall
    model, result = train_adv_post(
        task.base,
        task.tune,
        task.val,
        criterion="eo",
        lam=1.0,
        epochs=6,
        lr=1e-2,
        max_accuracy_drop=0.05,
        progress=False,
    )
    for key, value in task.base.state_dict().items():
        assert torch.equal(value, before[key])
    end = evaluate_model(model, task.test).overall
    assert end["eo_gap"] < 0.7 * start["eo_gap"]
    assert result.num_trainable_parameters == sum(p.numel() for p in model.parameters())


def test_adv_in_trains_from_scratch_against_the_adversary(task):
    torch.manual_seed(2)
    erm = MLPClassifier(in_features=6, hidden_sizes=(16,))
    train_erm(erm, task.train, task.val, epochs=6, lr=1e-2, progress=False)
    torch.manual_seed(2)
    fair = MLPClassifier(in_features=6, hidden_sizes=(16,))
    result = train_adv_in(
        fair,
        task.train,
        task.val,
        criterion="eo",
        lam=3.0,
        epochs=6,
        lr=1e-2,
        max_accuracy_drop=0.2,
        progress=False,
    )
    assert result.adversary is not None and result.best_epoch >= 1
    assert (
        evaluate_model(fair, task.test).overall["eo_gap"] < evaluate_model(erm, task.test).overall["eo_gap"]
    )
