"""microbat.design."""
