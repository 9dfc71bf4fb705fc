"""Baselines that MSQ is measured against on the same model and data.

Uniform QAT lives with the training methods (``msq.training.methods.UniformMethod``); BSQ, with its
bit-plane layers, regularizer and re-quantization, lives in ``msq.baselines.bsq`` and registers itself
as method "bsq" when imported. This package imports nothing on its own, so ``import msq`` stays lean.
"""
