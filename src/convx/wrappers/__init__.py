"""scikit-learn estimators around convx models, with Keras 3's names and signature (``keras.wrappers``).

Importing this module imports scikit-learn (an optional dependency: ``pip install 'convx-cnn[sklearn]'``).
"""

from convx.wrappers.sklearn_wrapper import SKLearnClassifier, SKLearnRegressor, SKLearnTransformer

__all__ = ["SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer"]
