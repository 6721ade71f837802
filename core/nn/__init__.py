"""shardgrad.nn (to be filled: Module, Parameter, layers, losses, functional, init, utils)."""
