"""astradup.store"""
