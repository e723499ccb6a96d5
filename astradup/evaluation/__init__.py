"""astradup.evaluation"""
