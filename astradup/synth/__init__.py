"""astradup.synth"""
