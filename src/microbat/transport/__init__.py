"""microbat.transport."""
