"""shardgrad.client"""
