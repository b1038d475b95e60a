"""convx.wrappers: SKLearnClassifier/Regressor/Transformer in scikit-learn's GridSearchCV, RandomizedSearchCV,
cross_val_score, Pipeline and clone, and scikit-learn's estimator checks that apply (Keras 3's signature)."""

import numpy as np
import pytest

from conftest import optional

sklearn = optional("sklearn", "sklearn")

import convx  # noqa: E402
from convx import layers  # noqa: E402


def dense_classifier(X, y, hidden=8, learning_rate=0.05):
    n_classes = y.shape[1]
    model = convx.Sequential([convx.Input((X.shape[1],)), layers.Dense(hidden, activation="relu"),
                              layers.Dense(n_classes, activation="softmax")])
    model.compile(optimizer=convx.optimizers.Adam(learning_rate=learning_rate), loss="categorical_crossentropy")
    return model


def dense_regressor(X, y, learning_rate=0.05):
    model = convx.Sequential([convx.Input((X.shape[1],)), layers.Dense(8, activation="relu"), layers.Dense(y.shape[1])])
    model.compile(optimizer=convx.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return model


def encoder(X, y):
    model = convx.Sequential([convx.Input((X.shape[1],)), layers.Dense(y.shape[1])])
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.fixture(scope="module")
def blobs():
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=120, centers=3, n_features=4, random_state=0)
    return X.astype(np.float32), y


def test_classifier_fits_predicts_labels_and_scores(blobs):
    from convx.wrappers import SKLearnClassifier

    X, y = blobs
    convx.utils.set_random_seed(0)
    clf = SKLearnClassifier(dense_classifier, fit_kwargs={"epochs": 30, "batch_size": 16})
    clf.fit(X, y + 10)
    assert list(clf.classes_) == [10, 11, 12] and clf.n_features_in_ == 4
    assert set(clf.predict(X)) <= {10, 11, 12}
    assert clf.score(X, y + 10) > 0.9
    assert clf.decision_function(X).shape == (120, 3) and clf.epoch_ == 30


def test_grid_search_over_model_and_fit_arguments(blobs):
    from sklearn.model_selection import GridSearchCV

    from convx.wrappers import SKLearnClassifier

    X, y = blobs
    grid = {"model_kwargs": [{"hidden": 4, "learning_rate": 0.05}, {"hidden": 8, "learning_rate": 0.001}],
            "fit_kwargs": [{"epochs": 20, "batch_size": 16}]}
    search = GridSearchCV(SKLearnClassifier(dense_classifier), grid, cv=2).fit(X, y)
    assert search.best_params_["model_kwargs"] == {"hidden": 4, "learning_rate": 0.05}
    assert len(search.cv_results_["mean_test_score"]) == 2


def test_randomized_search_cross_val_score_pipeline_clone(blobs):
    from sklearn.base import clone
    from sklearn.model_selection import RandomizedSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from convx.wrappers import SKLearnClassifier, SKLearnRegressor, SKLearnTransformer

    X, y = blobs
    reg = SKLearnRegressor(dense_regressor, fit_kwargs={"epochs": 5})
    scores = cross_val_score(reg, X, X[:, 0] * 2.0, cv=3)
    assert scores.shape == (3,)
    pipe = make_pipeline(StandardScaler(), SKLearnClassifier(dense_classifier, fit_kwargs={"epochs": 10}))
    assert pipe.fit(X, y).predict(X).shape == (120,)
    search = RandomizedSearchCV(SKLearnRegressor(dense_regressor, fit_kwargs={"epochs": 2}),
                                {"model_kwargs": [{"learning_rate": r} for r in (0.1, 0.01, 0.001)]}, n_iter=2, cv=2,
                                random_state=0).fit(X, X[:, 0])
    assert search.best_estimator_.predict(X).shape == (120,)
    copy = clone(reg)
    assert copy.get_params()["fit_kwargs"] == {"epochs": 5} and not hasattr(copy, "model_")
    features = SKLearnTransformer(encoder, fit_kwargs={"epochs": 1}).fit(X, X[:, :2]).transform(X)
    assert features.shape == (120, 2)


def test_compiled_model_instance_is_cloned_and_warm_start_continues(blobs):
    from convx.wrappers import SKLearnRegressor

    X, y = blobs
    target = X[:, :1] + X[:, 1:2]
    base = dense_regressor(X, target)
    reg = SKLearnRegressor(base, fit_kwargs={"epochs": 2})
    reg.fit(X, target)
    assert reg.model_ is not base and reg.predict(X).shape == (120, 1)
    warm = SKLearnRegressor(dense_regressor, warm_start=True, fit_kwargs={"epochs": 2}).fit(X, target)
    first = warm.model_
    warm.fit(X, target)
    assert warm.model_ is first
    with pytest.raises(RuntimeError, match="needs to be compiled"):
        SKLearnRegressor(lambda X, y: convx.Sequential([convx.Input((4,)), layers.Dense(1)])).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="Only binary and multiclass target types are supported"):
        from convx.wrappers import SKLearnClassifier

        SKLearnClassifier(dense_classifier).fit(X, X[:, 0])


@pytest.mark.slow
def test_scikit_learn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    from convx.wrappers import SKLearnClassifier, SKLearnRegressor, SKLearnTransformer

    # the checks fit many times on tiny data: tiny models, few epochs. The classifier's expected failures are the
    # ones Keras 3 lists for its own wrapper (checks that assume a reproducible fit, or a decision_function of logits)
    reproducible = "This test assumes reproducibility in fit."
    expected = {
        "SKLearnClassifier": {
            "check_classifiers_one_label_sample_weights": "0 sample weight is not ignored",
            "check_classifiers_classes": "with small test cases the estimator returns not all classes sometimes",
            "check_classifier_data_not_an_array": reproducible, "check_supervised_y_2d": reproducible,
            "check_fit_idempotent": reproducible,
            "check_classifiers_train": "decision_function can return both probabilities and logits",
        },
        "SKLearnRegressor": {"check_regressor_data_not_an_array": reproducible, "check_regressors_int": reproducible,
                             "check_supervised_y_2d": reproducible, "check_fit_idempotent": reproducible},
        "SKLearnTransformer": {"check_fit_idempotent": reproducible},
    }
    for estimator in (SKLearnClassifier(dense_classifier, fit_kwargs={"epochs": 5}),
                      SKLearnRegressor(dense_regressor, fit_kwargs={"epochs": 2}),
                      SKLearnTransformer(encoder, fit_kwargs={"epochs": 1})):
        results = check_estimator(estimator, on_fail=None, expected_failed_checks=expected[type(estimator).__name__])
        failures = [r for r in results if r["status"] == "failed"]
        assert not failures, [(f["check_name"], str(f["exception"])[:300]) for f in failures]
        assert sum(r["status"] == "passed" for r in results) > 20


def test_a_fitted_wrapper_pickles_with_its_model(blobs):
    import pickle

    from convx.wrappers import SKLearnClassifier

    X, y = blobs
    clf = SKLearnClassifier(dense_classifier, fit_kwargs={"epochs": 2}).fit(X, y)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict(X), clf.predict(X))
    assert clone.history_.history == clf.history_.history
