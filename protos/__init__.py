"""shardgrad.protos"""
