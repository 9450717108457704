import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from fairreprogram import FairReprogramClassifier
from fairreprogram.metrics import evaluate_fairness


def _frame(n, seed, agreement):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n, 2))
    y = (signal[:, 0] + 0.8 * rng.normal(size=n) > 0).astype(int)
    z = np.where(rng.random(n) < agreement, y, rng.integers(0, 2, n))
    frame = pd.DataFrame({"a": signal[:, 0], "b": signal[:, 1], "group": np.where(z == 1, "g1", "g0")})
    return frame, np.where(y == 1, "yes", "no"), frame["group"].to_numpy()


def test_fit_predict_without_sensitive_features():
    X, y, z = _frame(1500, 0, 0.8)
    clf = FairReprogramClassifier(
        criterion="eo", lam=1.0, epochs=8, base_epochs=10, lr=0.05, max_accuracy_drop=0.05, random_state=0
    )
    assert clf.fit(X, y, sensitive_features=z) is clf
    X_test, y_test, z_test = _frame(800, 1, 0.8)
    pred = clf.predict(X_test)
    assert set(pred) <= {"no", "yes"}
    proba = clf.predict_proba(X_test)
    assert proba.shape == (800, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert clf.score(X_test, y_test) > 0.7
    assert list(clf.classes_) == ["no", "yes"] and clf.groups_ == ["g0", "g1"]
    assert evaluate_fairness(y_true=y_test, y_pred=pred, sensitive_features=z_test).overall["eo_gap"] < 1
    assert len(clf.history_) >= 2


def test_errors_and_not_fitted():
    X, y, z = _frame(200, 0, 0.5)
    with pytest.raises(NotFittedError):
        FairReprogramClassifier().predict(X)
    with pytest.raises(ValueError, match="sensitive_features has 1 distinct group"):
        FairReprogramClassifier().fit(X, y, sensitive_features=np.zeros(200))
    with pytest.raises(ValueError, match="sensitive_features has 10 rows but X has 200"):
        FairReprogramClassifier().fit(X, y, sensitive_features=z[:10])
    with pytest.raises(ValueError, match=r"tune_fraction \+ val_fraction = 1.2"):
        FairReprogramClassifier(tune_fraction=0.6, val_fraction=0.6).fit(X, y, sensitive_features=z)
    bad = X.copy()
    bad.loc[3, "a"] = np.nan
    with pytest.raises(ValueError, match=r"NaN|non-finite"):
        FairReprogramClassifier(epochs=1, base_epochs=1).fit(bad, y, sensitive_features=z)
