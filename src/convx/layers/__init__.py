"""Keras 3-compatible layers (channels-last, float32)."""

from convx.layers.base import Layer, Variable
from convx.layers.convolutional import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
)
from convx.layers.core import Dense, Dropout, Flatten, Input, InputLayer
from convx.layers.embedding import Embedding
from convx.layers.text_vectorization import TextVectorization
from convx.layers.merging import (
    Add,
    Average,
    Concatenate,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    maximum,
    minimum,
    multiply,
    subtract,
)
from convx.layers.node import KerasTensor
from convx.layers import activations as _activations
from convx.layers import augmentation as _augmentation
from convx.layers import normalization as _normalization
from convx.layers import preprocessing as _preprocessing
from convx.layers import regularization as _regularization
from convx.layers import reshaping as _reshaping

# each of these modules lists its public layers in __all__
for _module in (_activations, _augmentation, _normalization, _preprocessing, _regularization, _reshaping):
    globals().update({name: getattr(_module, name) for name in _module.__all__})
from convx.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)

# Keras' short aliases
Convolution2D = Conv2D
Convolution1D = Conv1D
Convolution2DTranspose = Conv2DTranspose
Convolution1DTranspose = Conv1DTranspose
SeparableConvolution2D = SeparableConv2D
SeparableConvolution1D = SeparableConv1D
MaxPool2D = MaxPooling2D
MaxPool1D = MaxPooling1D
AvgPool2D = AveragePooling2D
AvgPool1D = AveragePooling1D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D
GlobalAvgPool1D = GlobalAveragePooling1D
GlobalMaxPool1D = GlobalMaxPooling1D

__all__ = [
    "Layer", "Variable", "Input", "InputLayer", "Dense", "Dropout", "Flatten", "Embedding", "TextVectorization",
    "Conv2D", "Conv1D", "DepthwiseConv2D", "SeparableConv2D", "DepthwiseConv1D", "SeparableConv1D", "SeparableConvolution1D", "Conv2DTranspose", "Conv1DTranspose",
    "Convolution2DTranspose", "Convolution1DTranspose", "SeparableConvolution2D", "MaxPooling2D", "AveragePooling2D", "MaxPooling1D", "AveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalMaxPooling1D",
    "Convolution2D", "Convolution1D", "MaxPool2D", "MaxPool1D", "AvgPool2D", "AvgPool1D",
    "GlobalAvgPool2D", "GlobalMaxPool2D", "GlobalAvgPool1D", "GlobalMaxPool1D",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
    "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "KerasTensor",
]
__all__ += [name for _module in (_activations, _augmentation, _normalization, _preprocessing, _regularization,
                             _reshaping)
            for name in _module.__all__]
