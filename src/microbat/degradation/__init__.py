"""microbat.degradation."""
