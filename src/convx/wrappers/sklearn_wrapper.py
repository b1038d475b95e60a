"""SKLearnClassifier, SKLearnRegressor, SKLearnTransformer: convx models as scikit-learn estimators."""

import copy

import numpy as np

try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
except ImportError as error:  # the message names what to install
    raise ImportError("convx.wrappers requires scikit-learn: pip install scikit-learn "
                      "(or pip install 'convx-cnn[sklearn]')") from error

from convx.wrappers._utils import (TargetReshaper, check_model, clone_compiled, model_from_bytes, model_to_bytes,
                                  type_of_target, validate_data)


def _is_model(value):
    return hasattr(value, "fit") and hasattr(value, "get_config")


class _PickledModel:
    """A model's .keras bytes inside a pickled wrapper."""

    def __init__(self, data):
        self.data = data


class SKLBase(BaseEstimator):
    """Common base of the wrappers.

    Parameters
    ----------
    model : convx Model or callable
        A compiled model (cloned, with its compile settings, at each ``fit``), or
        a callable ``model(X, y, **model_kwargs)`` returning a compiled model.
    warm_start : bool, default False
        Keep training the model of the previous ``fit`` instead of building a
        new one.
    model_kwargs : dict or None
        Extra keyword arguments of the ``model`` callable (hyper-parameters that
        a grid search may set as ``model_kwargs``).
    fit_kwargs : dict or None
        Keyword arguments of ``model.fit`` (``epochs``, ``batch_size``, ...).

    Attributes
    ----------
    model_ : Model
        The trained model.
    history_ : History
        What ``model_.fit`` returned.
    n_features_in_ : int
    """

    # regressors and transformers accept 2-D targets (one column per model output)
    _multi_output = True

    def __init__(self, model, warm_start=False, model_kwargs=None, fit_kwargs=None):
        self.model = model
        self.warm_start = warm_start
        self.model_kwargs = model_kwargs
        self.fit_kwargs = fit_kwargs

    def _more_tags(self):
        return {"non_deterministic": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True
        return tags

    def __sklearn_clone__(self):
        model = clone_compiled(self.model) if _is_model(self.model) else self.model
        return type(self)(model=model, warm_start=self.warm_start, model_kwargs=self.model_kwargs,
                          fit_kwargs=self.fit_kwargs)

    def __getstate__(self):
        # models are pickled as their .keras files (they hold locks); the history without its model
        state = dict(self.__dict__)
        for key in ("model", "model_"):
            if _is_model(state.get(key)):
                state[key] = _PickledModel(model_to_bytes(state[key]))
        if "history_" in state:
            history = copy.copy(state["history_"])
            history._model = None
            state["history_"] = history
        return state

    def __setstate__(self, state):
        for key, value in state.items():
            if isinstance(value, _PickledModel):
                state[key] = model_from_bytes(value.data)
        self.__dict__.update(state)

    @property
    def epoch_(self):
        """Number of epochs the model has been trained for."""
        return len(getattr(getattr(self, "history_", None), "epoch", []))

    def _get_model(self, X, y):
        if _is_model(self.model):
            return clone_compiled(self.model)
        return self.model(X=X, y=y, **(self.model_kwargs or {}))

    def fit(self, X, y, **kwargs):
        """Train on ``X`` (n_samples, n_features) and ``y``; ``kwargs`` go to ``model.fit``.

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, multi_output=self._multi_output)
        y = self._process_target(y, reset=True)
        model = self.model_ if self.warm_start and hasattr(self, "model_") else self._get_model(X, y)
        check_model(model)
        fit_kwargs = {"verbose": 0, **(self.fit_kwargs or {}), **kwargs}
        self.history_ = model.fit(X, y, **fit_kwargs)
        self.model_ = model
        return self

    def predict(self, X):
        """Predictions for ``X``, in the form of the ``y`` given to ``fit``."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self._reverse_process_target(self.model_.predict(X, verbose=0))

    def _process_target(self, y, reset=False):
        type_of_target(y)
        if reset:
            self._target_encoder = TargetReshaper().fit(y)
        return self._target_encoder.transform(y)

    def _reverse_process_target(self, y):
        return self._target_encoder.inverse_transform(y)


class SKLearnClassifier(ClassifierMixin, SKLBase):
    """A classifier: the labels are one-hot encoded for the model (which ends in a softmax over
    ``len(classes_)`` units, trained e.g. with ``categorical_crossentropy``); ``predict`` returns labels.

    Parameters
    ----------
    model, warm_start, model_kwargs, fit_kwargs
        See :class:`SKLBase`.

    Attributes
    ----------
    classes_ : ndarray
        The sorted class labels.
    """

    _multi_output = False

    def decision_function(self, X):
        """The model's raw outputs for ``X`` (n_samples, n_classes)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.model_.predict(X, verbose=0)

    def _process_target(self, y, reset=False):
        target_type = type_of_target(y)
        if target_type not in ("binary", "multiclass"):
            raise ValueError(f"Only binary and multiclass target types are supported. Target type: {target_type}")
        if reset:
            encoder = sklearn.preprocessing.OneHotEncoder(sparse_output=False)
            self._target_encoder = sklearn.pipeline.make_pipeline(TargetReshaper(), encoder).fit(y)
            self.classes_ = np.unique(y)
            if len(self.classes_) == 1:
                raise ValueError("Classifier can't train when only one class is present.")
        return self._target_encoder.transform(y)

    def _more_tags(self):
        return {"poor_score": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True
        return tags


class SKLearnRegressor(RegressorMixin, SKLBase):
    """A regressor: ``y`` of shape (n,) is given to the model as (n, 1) and predictions come back as (n,)."""

    def _more_tags(self):
        return {"poor_score": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        return tags


class SKLearnTransformer(TransformerMixin, SKLBase):
    """A transformer: ``transform(X)`` is the trained model's output (e.g. an encoder's features)."""

    def transform(self, X):
        """The model's outputs for ``X``."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.model_.predict(X, verbose=0)

    def _more_tags(self):
        return {"preserves_dtype": []}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        return tags
