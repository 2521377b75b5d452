"""The model, its preprocessing, Grad-CAM, the "unknown" gate and the batched engine."""
