"""Pure model code: features, per-card behaviour, detectors, ensemble, training, and the
registry (files only). No I/O clients, no environment reads."""
