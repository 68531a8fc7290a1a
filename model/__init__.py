"""Pure model code: features, per-card behaviour, detectors (unsupervised and the supervised
classifier), the ensemble with its alert budget, drift monitor and explanations, training
with its held-out evaluation and score calibration, and the registry (files only). No I/O
clients, no environment reads."""
