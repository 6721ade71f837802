#!/usr/bin/env bash
# Regenerates the Python modules of shardgrad.protos from protos/*.proto with grpcio-tools.
#
# The .proto files import each other as "shardgrad/protos/<name>.proto" and are compiled from
# a temporary include root holding them at that path, so the generated modules import each
# other as `shardgrad.protos.<name>_pb2` with no rewriting afterwards.
#
# Usage: scripts/gen_protos.sh [OUTPUT_DIR]   (default: protos/)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/protos}"
python="${PYTHON:-$root/.venv/bin/python}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/include/shardgrad/protos" "$tmp/gen" "$out"
cp "$root"/protos/*.proto "$tmp/include/shardgrad/protos/"

cd "$tmp/include"
protos=(shardgrad/protos/*.proto)
services=()
for p in "${protos[@]}"; do
    if grep -q '^service ' "$p"; then services+=("$p"); fi
done
"$python" -m grpc_tools.protoc -I . --python_out="$tmp/gen" --pyi_out="$tmp/gen" "${protos[@]}"
"$python" -m grpc_tools.protoc -I . --grpc_python_out="$tmp/gen" "${services[@]}"

rm -f "$out"/*_pb2.py "$out"/*_pb2.pyi "$out"/*_pb2_grpc.py
cp "$tmp"/gen/shardgrad/protos/* "$out"/
