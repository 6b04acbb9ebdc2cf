"""MNIST classifiers of the paper's Table 1 and minimal adversarial perturbations (problem 7).

Modules: `data` (MNIST IDX files), `models` (the six architectures), `storage` (HDF5 weights),
`train` (``python -m vision.train``), `adversarial` (``python -m vision.adversarial``).
"""
