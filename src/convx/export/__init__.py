"""Exporting models for serving: ONNX (``model.export('m.onnx', format='onnx')``), run by ONNX Runtime."""


def export_model(model, filepath, format="tf_saved_model", verbose=None, input_signature=None, opset_version=None,
                 opset=None, **kwargs):
    """Keras 3's ``Model.export``: convx writes ``format='onnx'`` (see :func:`convx.export.onnx.export_onnx`)."""
    if kwargs:
        raise ValueError(f"The following argument(s) are not supported: {list(kwargs.keys())}")
    if format != "onnx":
        raise ValueError(f"convx exports format='onnx' only (Keras' {format!r} needs TensorFlow); received "
                         f"format={format!r}")
    if input_signature is not None:
        raise ValueError("input_signature is not supported: the ONNX file takes the model's inputs, batch size free")
    if opset is not None and opset_version is not None and opset != opset_version:
        raise ValueError(f"opset={opset} and opset_version={opset_version} disagree")
    from convx.export.onnx import export_onnx

    return export_onnx(model, filepath, opset=opset if opset is not None else opset_version, verbose=verbose)
