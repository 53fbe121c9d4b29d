"""microbat.cell."""
