"""astradup.index"""
