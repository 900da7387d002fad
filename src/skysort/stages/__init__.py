"""One module per stage: its function, then its wiring (``STAGE``); see :mod:`skysort.pipeline.registry`.

Kept empty on purpose: every stage module imports this package, so anything here
would become a dependency of every stage in ``dvc.yaml``.
"""
