"""microbat.viz."""
