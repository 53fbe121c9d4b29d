"""microbat.imaging."""
