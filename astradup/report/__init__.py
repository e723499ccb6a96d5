"""astradup.report"""
