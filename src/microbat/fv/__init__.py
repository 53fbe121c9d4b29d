"""microbat.fv."""
