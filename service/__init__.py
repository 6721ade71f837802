"""shardgrad.service: the coordinator.

- `config`: a job's configuration and its validation (`JobConfig`, `ValidationError`)
- `store`: jobs, metrics, workers and datasets in SQLite under the state directory
- `datasets`: uploaded datasets by sha256, `digits`, synthetic sets
- `checkpoint`: crash-safe, integrity-checked safetensors checkpoints
- `sampler`: which rows each step trains on, as a function of (seed, step)
- `trainer`: one job's training loop against a worker pool
- `jobs`: `JobManager`, one loop thread per running job over a shared pool
- `pools`: the worker-pool interface and its implementations (in-process, gRPC, Ray)
- `api`: the gRPC Coordinator service; `convert`: records as its messages
- `server`: `Coordinator`, the process behind `shardgrad serve`; `cli`: the command
- `security`: the bearer token and TLS credentials; `launcher`: local worker processes
"""
