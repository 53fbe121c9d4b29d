"""Physical constants (SI, CODATA 2018): a leaf module that anything may import."""

__all__ = ["FARADAY"]

#: Faraday constant, C/mol.
FARADAY = 96485.33212
