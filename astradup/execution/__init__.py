"""astradup.execution"""
