"""astradup.tuning"""
