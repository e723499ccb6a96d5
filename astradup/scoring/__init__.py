"""astradup.scoring"""
