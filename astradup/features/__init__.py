"""astradup.features"""
