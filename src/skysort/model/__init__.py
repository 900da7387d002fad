"""The Keras side: encoders, the nets, losses, input pipelines, the fit and its report.

``build``, ``callbacks``, ``fit``, ``losses`` and ``tfdata`` import TensorFlow at import
time; the stages import them only once they run, so the other stages start fast.
``encoders`` lists the choices, and ``inputs`` reads the arrays, without TensorFlow.
"""
