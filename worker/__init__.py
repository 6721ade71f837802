"""A gradient worker: computes a step's micro-shard gradients for the coordinator.

- `compute`: the transport-free core (`GradientComputer`), shared by every transport.
- `reduction`: the fixed pairwise tree over micro-shards (the coordinator imports it too).
- `layout`, `codec`, `job`: the flat parameter layout, gradient compression, job and result
  types.
- `wire`, `messages`, `client`, `grpc_server`, `cli`: the gRPC transport and
  `shardgrad worker`.
- `ray_actor`: the same compute as a Ray actor.

Importing this package imports nothing heavy; each module imports what it needs.
"""
