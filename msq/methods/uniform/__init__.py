"""Uniform QAT (``--method uniform``): every searched layer at ``uniform_bits`` on MSQ's schedule."""
from msq.methods.uniform.spec import SPEC

__all__ = ["SPEC"]
