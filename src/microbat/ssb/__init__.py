"""microbat.ssb."""
