"""The train stage's pieces: what it reads (inputs), how it fits (fit), what it reports (report).

No module here imports TensorFlow at import time except ``callbacks`` and ``fit``,
which the train stage imports only once it runs.
"""
