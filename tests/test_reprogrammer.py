import json
import time
import warnings

import pytest
import torch

from fairreprogram.engine import (
    CHECKPOINT_NAME,
    HISTORY_NAME,
    Reprogrammer,
    TrainConfig,
    compare_models,
    compare_probabilities,
    evaluate_model,
    evaluate_probabilities,
    predict_dataset,
    train,
)
from fairreprogram.engine._batches import dataset_column
from fairreprogram.engine._loop import balanced_class_weights
from fairreprogram.engine._reprogrammer import infer_num_groups
from fairreprogram.models import MLPClassifier, ReprogrammedModel
from fairreprogram.triggers import MaskOffsetTrigger
from fairreprogram.utils import FairnessWarning

FAST = dict(epochs=8, batch_size=100, lr=0.05, adversary_lr=5e-3, max_accuracy_drop=0.05)


def _copy(model):
    clone = MLPClassifier(model.config)
    clone.load_state_dict(model.state_dict())
    return clone


def test_fit_cuts_the_gap_and_leaves_the_model_bit_identical(task):
    base = _copy(task.base)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    start = evaluate_model(base, task.test).overall
    trigger = MaskOffsetTrigger(num_features=6)
    deployed = Reprogrammer(base, trigger, criterion="dp", lam=1.0, **FAST).fit(
        task.tune, task.val, progress=False
    )
    after = evaluate_model(deployed, task.test).overall
    assert isinstance(deployed, ReprogrammedModel)
    assert after["dp_gap"] < 0.7 * start["dp_gap"]
    assert after["accuracy"] > start["accuracy"] - 0.1
    for key, value in base.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not base.training and all(not p.requires_grad for p in base.parameters())
    # The deployable model needs only x.
    x = task.test.tensors[0][:5]
    assert deployed(x).shape == (5, 2)
    assert torch.equal(deployed.predict(x), deployed(x).argmax(1))


def test_history_checkpoint_and_selection(task, tmp_path):
    trigger = MaskOffsetTrigger(num_features=6)
    rp = Reprogrammer(_copy(task.base), trigger, criterion="eo", lam=1.0, **FAST)
    rp.fit(task.tune, task.val, output_dir=tmp_path, progress=False)
    history = json.loads((tmp_path / HISTORY_NAME).read_text())
    assert [h["epoch"] for h in history] == list(range(0, 9))
    assert (tmp_path / CHECKPOINT_NAME).is_file()
    result = rp.result_
    floor = history[0]["val"]["accuracy"] - FAST["max_accuracy_drop"]
    eligible = [h for h in history if h["val"]["accuracy"] >= floor]
    assert result.best_epoch == min(eligible, key=lambda h: h["val"]["eo_gap"])["epoch"]
    assert json.dumps(rp.history_, sort_keys=True) == json.dumps(history, sort_keys=True)


def _train(task, out, *, epochs, stop_after=None, seed=0, validate_every=1, results=None, pause=0.0):
    trigger = MaskOffsetTrigger(num_features=6)
    model = _copy(task.base)

    def interrupt(entry):
        time.sleep(pause)  # stands for a slow epoch
        if stop_after is not None and entry["epoch"] == stop_after:
            raise KeyboardInterrupt

    config = TrainConfig(
        criterion="eo",
        lam=1.0,
        seed=seed,
        selection="last",
        validate_every=validate_every,
        **{**FAST, "epochs": epochs},
    )
    result = train(
        predictor=ReprogrammedModel(trigger, model),
        trainable=trigger,
        train_data=task.tune,
        val_data=task.val,
        config=config,
        num_classes=2,
        num_groups=2,
        output_dir=out,
        progress=False,
        on_epoch_end=interrupt,
    )
    if results is not None:
        results.append(result)
    return trigger


def test_interrupted_run_resumes_to_the_same_result(task, tmp_path):
    straight = _train(task, tmp_path / "a", epochs=5)
    with pytest.raises(KeyboardInterrupt):
        _train(task, tmp_path / "b", epochs=5, stop_after=2)
    history = json.loads((tmp_path / "b" / HISTORY_NAME).read_text())
    assert history[-1]["epoch"] == 2
    resumed = _train(task, tmp_path / "b", epochs=5)
    for key, value in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key
    assert len(json.loads((tmp_path / "b" / HISTORY_NAME).read_text())) == 6


def test_a_resumed_run_counts_the_time_earlier_calls_spent_on_it(task, tmp_path):
    results = []
    with pytest.raises(KeyboardInterrupt):  # epochs 1 and 2, each followed by a 0.5 s pause
        _train(task, tmp_path, epochs=4, stop_after=2, pause=0.5)
    _train(task, tmp_path, epochs=4, results=results)
    (resumed,) = results
    assert resumed.earlier_wall_time >= 0.5  # up to the epoch-2 checkpoint: one pause in it
    assert resumed.wall_time < resumed.earlier_wall_time  # this call: two fast epochs
    _train(task, tmp_path / "fresh", epochs=1, results=results)
    assert results[-1].earlier_wall_time == 0.0


def test_validate_every_skips_validations_and_resumes_exactly(task, tmp_path):
    straight = _train(task, tmp_path / "a", epochs=7)
    sparse = _train(task, tmp_path / "b", epochs=7, validate_every=3)
    history = json.loads((tmp_path / "b" / HISTORY_NAME).read_text())
    assert [h["epoch"] for h in history] == [0, 3, 6, 7]  # the last epoch is always validated
    for key, value in straight.state_dict().items():  # same updates, fewer validations
        assert torch.equal(sparse.state_dict()[key], value), key
    with pytest.raises(KeyboardInterrupt):
        _train(task, tmp_path / "c", epochs=7, validate_every=3, stop_after=3)
    resumed = _train(task, tmp_path / "c", epochs=7, validate_every=3)
    assert [h["epoch"] for h in json.loads((tmp_path / "c" / HISTORY_NAME).read_text())] == [0, 3, 6, 7]
    for key, value in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key
    with pytest.raises(ValueError, match=r"validate_every=0 is not valid"):
        TrainConfig(validate_every=0)


def test_resume_with_another_config_is_refused(task, tmp_path):
    _train(task, tmp_path, epochs=2)
    with pytest.raises(ValueError, match=r"different configuration \(differing options: \['seed'\]\)"):
        _train(task, tmp_path, epochs=2, seed=5)


def test_early_stopping(task):
    rp = Reprogrammer(
        _copy(task.base),
        MaskOffsetTrigger(num_features=6),
        criterion="dp",
        **{**FAST, "epochs": 30, "patience": 2, "lr": 1e-6},
    )
    rp.fit(task.tune, task.val, progress=False)
    assert rp.result_.stopped_early
    assert len(rp.history_) < 31


def test_worst_group_selection_rule(task):
    rp = Reprogrammer(
        _copy(task.base), MaskOffsetTrigger(num_features=6), selection="worst_group_accuracy", **FAST
    )
    rp.fit(task.tune, task.val, progress=False)
    best = max(rp.history_, key=lambda h: h["val"]["worst_group_accuracy"])
    assert rp.result_.best_val["worst_group_accuracy"] == best["val"]["worst_group_accuracy"]


def test_multiclass_and_three_groups(make_data):
    data = make_data(300, seed=7, num_groups=3)
    x, y, z = data.tensors
    y3 = (y + (x[:, 1] > 1).long()).clamp(max=2)
    data = torch.utils.data.TensorDataset(x, y3, z)
    model = MLPClassifier(in_features=6, num_classes=3, hidden_sizes=(8,))
    rp = Reprogrammer(model, MaskOffsetTrigger(num_features=6), criterion="eo", epochs=2, batch_size=64)
    rp.fit(data, data, progress=False)
    assert rp.result_.adversary.num_groups == 3
    assert rp.result_.adversary.num_classes == 3


@pytest.mark.parametrize("precision", ["bf16"])
def test_mixed_precision_runs_on_cpu(task, precision):
    rp = Reprogrammer(
        _copy(task.base),
        MaskOffsetTrigger(num_features=6),
        mixed_precision=precision,
        **{**FAST, "epochs": 2},
    )
    rp.fit(task.tune, task.val, progress=False)
    assert len(rp.history_) == 3


def test_comparing_predictions_made_once_equals_comparing_the_models(task):
    trigger = MaskOffsetTrigger(num_features=6)
    with torch.no_grad():
        trigger.offset.normal_(0.0, 0.5)  # any change of predictions will do
    after = ReprogrammedModel(trigger, task.base)
    result = compare_models(task.base, after, task.test, n_bootstrap=50, group_names=["a", "b"])
    probs_before, y, z = predict_dataset(task.base, task.test)
    probs_after, _, _ = predict_dataset(after, task.test)
    again = compare_probabilities(probs_before, probs_after, y, z, n_bootstrap=50, group_names=["a", "b"])
    assert again.to_dict() == result.to_dict()
    assert result.before == pytest.approx(evaluate_model(task.base, task.test).overall)
    assert evaluate_probabilities(probs_after, y, z).overall == pytest.approx(result.after)
    assert result.difference["accuracy"] != 0.0  # the trigger did change the predictions
    bad_shape = r"probs_after has shape \(600, 3\), but probs_before has \(600, 2\)"
    with pytest.raises(ValueError, match=bad_shape):
        compare_probabilities(probs_before, probs_after[:, [0, 1, 1]], y, z)


def test_warns_when_the_accuracy_floor_admits_the_majority_class(task):
    x, y, z = task.val.tensors
    keep = torch.cat([torch.nonzero(y == 0).flatten(), torch.nonzero(y == 1).flatten()[:10]])
    skewed = torch.utils.data.TensorDataset(x[keep], y[keep], z[keep])  # about 95% class 0
    quick = dict(FAST, epochs=1)
    message = r"is met by predicting class 0 for every row \(0\.9\d+ of the validation labels\)"
    with pytest.warns(FairnessWarning, match=message):
        Reprogrammer(_copy(task.base), MaskOffsetTrigger(num_features=6), **quick).fit(
            task.tune, skewed, progress=False
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*is met by predicting class", category=FairnessWarning)
        # Balanced accuracy cannot be met by a constant; nor can plain accuracy on balanced labels.
        Reprogrammer(
            _copy(task.base), MaskOffsetTrigger(num_features=6), **quick, accuracy_metric="balanced_accuracy"
        ).fit(task.tune, skewed, progress=False)
        Reprogrammer(_copy(task.base), MaskOffsetTrigger(num_features=6), **quick).fit(
            task.tune, task.val, progress=False
        )


class _BatchOnly(torch.utils.data.Dataset):
    """A dataset that serves whole batches only (``batch(indices)``), as cached datasets may."""

    def __init__(self, tensors):
        self.x, self.y, self.z = tensors

    def __len__(self):
        return len(self.y)

    def batch(self, rows):
        index = torch.as_tensor(rows, dtype=torch.long)
        return self.x[index], self.y[index], self.z[index]


def test_datasets_that_serve_only_batches_get_the_floor_check_and_class_weights(task):
    x, y, z = task.val.tensors
    keep = torch.cat([torch.nonzero(y == 0).flatten(), torch.nonzero(y == 1).flatten()[:10]])
    skewed = torch.utils.data.Subset(_BatchOnly((x, y, z)), keep.tolist())  # read through a Subset
    tune = _BatchOnly(task.tune.tensors)
    with pytest.raises(NotImplementedError):
        _ = tune[0]  # no per-row access: every read must go through batch()
    assert infer_num_groups(tune) == infer_num_groups(task.tune) == 2
    as_tensors = torch.utils.data.TensorDataset(x[keep], y[keep], z[keep])
    assert torch.equal(balanced_class_weights(skewed, 2), balanced_class_weights(as_tensors, 2))
    assert torch.equal(dataset_column(skewed, 1), y[keep])
    quick = dict(FAST, epochs=1, class_weight="balanced")
    message = r"is met by predicting class 0 for every row \(0\.9\d+ of the validation labels\)"
    with pytest.warns(FairnessWarning, match=message):
        reprogrammer = Reprogrammer(_copy(task.base), MaskOffsetTrigger(num_features=6), **quick)
        reprogrammer.fit(tune, skewed, progress=False)
    assert reprogrammer.result_ is not None and len(reprogrammer.result_.history) == 2


def test_bad_inputs(task):
    with pytest.raises(ValueError, match=r"lam=-1\.0 is not valid; expected a finite number >= 0"):
        Reprogrammer(task.base, MaskOffsetTrigger(num_features=6), lam=-1.0)
    with pytest.raises(ValueError, match=r"built for inputs of shape \(4,\).*got inputs of shape \(6,\)"):
        Reprogrammer(_copy(task.base), MaskOffsetTrigger(num_features=4)).fit(
            task.tune, task.val, progress=False
        )
    one_group = torch.utils.data.TensorDataset(
        task.tune.tensors[0], task.tune.tensors[1], torch.zeros_like(task.tune.tensors[2])
    )
    with pytest.raises(ValueError, match=r"1 sensitive group\(s\).*expected at least 2"):
        Reprogrammer(_copy(task.base), MaskOffsetTrigger(num_features=6)).fit(
            one_group, task.val, progress=False
        )
    empty = torch.utils.data.TensorDataset(torch.zeros(0, 6), torch.zeros(0).long(), torch.zeros(0).long())
    with pytest.raises(ValueError, match="tune_data is empty"):
        Reprogrammer(_copy(task.base), MaskOffsetTrigger(num_features=6)).fit(empty, task.val, progress=False)
    with pytest.raises(TypeError, match="expected a fairreprogram Trigger"):
        Reprogrammer(task.base, torch.nn.Identity())
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['colour'\]"):
        TrainConfig().replace(colour=1)
