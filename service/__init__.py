"""shardgrad.service"""
