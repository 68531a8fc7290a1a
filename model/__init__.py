"""Pure model code: features, per-card behaviour, detectors, ensemble, training. No I/O clients."""
