"""microbat.synth."""
