"""microbat.io."""
