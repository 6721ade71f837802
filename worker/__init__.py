"""shardgrad.worker"""
