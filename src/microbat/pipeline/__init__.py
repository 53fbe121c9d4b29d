"""microbat.pipeline."""
