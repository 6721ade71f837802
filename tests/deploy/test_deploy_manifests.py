"""deploy/'s YAML: every file parses, and what the manifests run agrees with the CLI and with
each other (names, ports, env vars, labels), so a renamed flag or port fails here first."""

from __future__ import annotations

import re

import pytest
from deploytest_helpers import (
    DEPLOY,
    container_ports,
    containers,
    env_names,
    env_vars_read_by_shardgrad,
    find,
    k8s_objects,
    load_docs,
    option,
    parse_cli,
    pod_spec,
    shardgrad_commands_in_script,
    yaml_files,
)

from shardgrad.service.dashboard_cli import DEFAULT_PORT as DASHBOARD_DEFAULT_PORT

# The coordinator API port every manifest, the images and the docs use.
API_PORT = 50051
STATE_DIR = "/var/lib/shardgrad"
TOKEN_SECRET = ("shardgrad-token", "token")


def _container(obj: dict, name: str) -> dict:
    for c in containers(pod_spec(obj)):
        if c["name"] == name:
            return c
    raise AssertionError(f"{obj['metadata']['name']} has no container {name!r}")


def _shardgrad_argv(container: dict) -> list[str]:
    """What a container runs as `shardgrad ...` (the image's ENTRYPOINT is `shardgrad`, or a
    shell script calls it)."""
    command = container.get("command")
    args = [str(a) for a in container.get("args", [])]
    if command is None or command == ["shardgrad"]:
        return args
    script = "\n".join(args)
    found = shardgrad_commands_in_script(script)
    assert len(found) == 1, f"container {container['name']}: expected one shardgrad command"
    return found[0]


# ---------------------------------------------------------------------- parsing


def test_every_yaml_file_parses_into_mappings():
    files = yaml_files()
    names = {p.relative_to(DEPLOY).as_posix() for p in files}
    assert {
        "compose.yaml",
        "ray/cluster.yaml",
        "kuberay/raycluster.yaml",
        "kuberay/rayjob.yaml",
        "k8s/coordinator.yaml",
        "k8s/workers.yaml",
        "k8s/workers-gpu.yaml",
        "k8s/hpa.yaml",
        "k8s/secret.yaml",
        "k8s/kustomization.yaml",
    } <= names
    for path in files:
        docs = load_docs(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            assert isinstance(doc, dict), f"{path}: a document is not a mapping"


def test_kubernetes_objects_are_well_formed():
    seen = set()
    for path, obj in k8s_objects():
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), f"{path}: bad name {name!r}"
        assert len(name) <= 63
        assert obj["apiVersion"] in {
            "v1",
            "apps/v1",
            "autoscaling/v2",
            "ray.io/v1",
        }, f"{path}: unexpected apiVersion {obj['apiVersion']}"
        assert meta.get("labels", {}).get("app.kubernetes.io/name") == "shardgrad", path
        key = (obj["kind"], name)
        assert key not in seen, f"{key} defined twice"
        seen.add(key)
    kinds = {k for k, _ in seen}
    assert {
        "Deployment",
        "Service",
        "PersistentVolumeClaim",
        "Secret",
        "HorizontalPodAutoscaler",
        "RayCluster",
        "RayJob",
    } <= kinds


def test_kustomization_lists_existing_files_but_never_the_placeholder_secret():
    kust = load_docs(DEPLOY / "k8s" / "kustomization.yaml")[0]
    for res in kust["resources"]:
        assert (DEPLOY / "k8s" / res).is_file(), res
    assert "secret.yaml" not in kust["resources"]
    secret = find("Secret", TOKEN_SECRET[0])
    assert TOKEN_SECRET[1] in secret["stringData"]


# ---------------------------------------------------------------------- every command parses


def _all_shardgrad_commands() -> list[tuple[str, list[str]]]:
    out = []
    for path, obj in k8s_objects():
        spec = obj.get("spec", {})
        templates = []
        if obj["kind"] == "Deployment":
            templates.append(spec["template"]["spec"])
        if obj["kind"] == "RayCluster":
            templates.append(spec["headGroupSpec"]["template"]["spec"])
        for spec_ in templates:
            for c in containers(spec_):
                out.append((f"{path.name}:{c['name']}", _shardgrad_argv(c)))
        if obj["kind"] == "RayJob":
            out += [(f"{path.name}:entrypoint", argv) for argv in _entrypoint_commands(obj)]
    return out


def _entrypoint_commands(rayjob: dict) -> list[list[str]]:
    return shardgrad_commands_in_script(rayjob["spec"]["entrypoint"])


def test_every_shardgrad_command_in_the_manifests_parses_with_the_cli():
    commands = _all_shardgrad_commands()
    subcommands = {argv[0] for _, argv in commands}
    assert {"serve", "worker"} <= subcommands
    for where, argv in commands:
        args = parse_cli(argv)
        assert args.command in ("serve", "worker"), where


# ---------------------------------------------------------------------- the coordinator


def test_coordinator_deployment_service_and_volume_agree():
    dep = find("Deployment", "shardgrad-coordinator")
    assert dep["spec"]["replicas"] == 1, "one coordinator per state directory"
    assert dep["spec"]["strategy"]["type"] == "Recreate", "the old pod must release the lock"
    c = _container(dep, "coordinator")
    argv = _shardgrad_argv(c)
    args = parse_cli(argv)
    assert args.command == "serve"
    assert args.pool == "grpc"
    assert args.host == "0.0.0.0", "reachable from worker pods"
    ports = container_ports(c)
    assert args.port == ports["grpc"] == API_PORT
    assert args.dashboard_port == ports["dashboard"] == DASHBOARD_DEFAULT_PORT
    assert c["readinessProbe"]["grpc"]["port"] == args.port
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "dashboard"}

    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert args.state_dir == mounts["state"] == STATE_DIR
    volumes = {v["name"]: v for v in pod_spec(dep)["volumes"]}
    claim = volumes["state"]["persistentVolumeClaim"]["claimName"]
    pvc = find("PersistentVolumeClaim", claim)
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]

    svc = find("Service", "shardgrad-coordinator")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"] == labels
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert svc_ports["grpc"]["port"] == args.port and svc_ports["grpc"]["targetPort"] == "grpc"
    assert svc_ports["dashboard"]["port"] == args.dashboard_port


def _token_from_secret(container: dict) -> None:
    env = {e["name"]: e for e in container.get("env", [])}
    assert "SHARDGRAD_TOKEN" in env, f"{container['name']} does not get the token"
    ref = env["SHARDGRAD_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == TOKEN_SECRET


def test_every_shardgrad_container_gets_the_token_from_the_secret():
    for obj_kind, name, cname in [
        ("Deployment", "shardgrad-coordinator", "coordinator"),
        ("Deployment", "shardgrad-worker", "worker"),
        ("Deployment", "shardgrad-worker-gpu", "worker"),
    ]:
        _token_from_secret(_container(find(obj_kind, name), cname))
    head = find("RayCluster", "shardgrad")["spec"]["headGroupSpec"]["template"]["spec"]
    _token_from_secret(containers(head)[0])


def test_env_vars_are_ones_shardgrad_reads():
    known = env_vars_read_by_shardgrad()
    assert {"SHARDGRAD_TOKEN", "SHARDGRAD_ADDRESS", "SHARDGRAD_STATE_DIR"} <= known
    for path in yaml_files():
        for name in set(re.findall(r"\bSHARDGRAD_[A-Z_]+\b", path.read_text())):
            assert name in known, f"{path.name} sets {name}, which shardgrad never reads"
    for path, obj in k8s_objects():
        if obj["kind"] != "Deployment":
            continue
        for c in containers(pod_spec(obj)):
            for name in env_names(c):
                if name.startswith("SHARDGRAD_"):
                    assert name in known, f"{path.name}: {name}"


# ---------------------------------------------------------------------- gRPC workers


@pytest.mark.parametrize("name", ["shardgrad-worker", "shardgrad-worker-gpu"])
def test_worker_deployments_reach_the_coordinator_service(name):
    dep = find("Deployment", name)
    c = _container(dep, "worker")
    args = parse_cli(_shardgrad_argv(c))
    assert args.command == "worker"
    svc = find("Service", "shardgrad-coordinator")
    grpc_port = {p["name"]: p["port"] for p in svc["spec"]["ports"]}["grpc"]
    assert args.coordinator == f"{svc['metadata']['name']}:{grpc_port}"
    assert args.host == "0.0.0.0"
    assert args.port == container_ports(c)["grpc"]
    assert c["readinessProbe"]["grpc"]["port"] == args.port
    # The coordinator dials the address a worker registers: the pod's own IP.
    assert args.advertise_host == "$(POD_IP)"
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    # The pod outlives the worker's drain on SIGTERM.
    assert pod_spec(dep)["terminationGracePeriodSeconds"] > args.drain_timeout
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"] == labels
    limits = c["resources"]["limits"]
    assert int(limits["cpu"]) == args.threads, "BLAS threads = the CPUs the pod may use"
    if name.endswith("gpu"):
        assert args.device == "cuda"
        assert limits["nvidia.com/gpu"] == 1


def test_coordinator_compute_threads_match_the_workers_cpus():
    """Every worker must run every job with the same BLAS thread count for bitwise identical
    results; the coordinator sets it, and it should be what a worker pod may use."""
    coordinator = parse_cli(
        _shardgrad_argv(_container(find("Deployment", "shardgrad-coordinator"), "coordinator"))
    )
    for name in ("shardgrad-worker", "shardgrad-worker-gpu"):
        worker = parse_cli(_shardgrad_argv(_container(find("Deployment", name), "worker")))
        assert coordinator.compute_threads == worker.threads


def test_hpa_scales_the_worker_deployment():
    hpa = find("HorizontalPodAutoscaler", "shardgrad-worker")
    ref = hpa["spec"]["scaleTargetRef"]
    dep = find(ref["kind"], ref["name"])
    assert ref["apiVersion"] == dep["apiVersion"]
    assert 1 <= hpa["spec"]["minReplicas"] <= dep["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    c = _container(dep, "worker")
    assert "cpu" in c["resources"]["requests"], "CPU utilisation needs a CPU request"


# ---------------------------------------------------------------------- Ray


def test_raycluster_head_runs_a_ray_coordinator_and_workers_have_gpus():
    rc = find("RayCluster", "shardgrad")
    assert rc["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    head = rc["spec"]["headGroupSpec"]
    c = containers(head["template"]["spec"])[0]
    script = "\n".join(c["args"])
    assert "$KUBERAY_GEN_RAY_START_CMD" in script
    args = parse_cli(_shardgrad_argv(c))
    assert args.command == "serve" and args.pool == "ray" and args.ray_address == "auto"
    ports = container_ports(c)
    assert args.port == ports["grpc"] == API_PORT
    assert args.dashboard_port == ports["dashboard"] == DASHBOARD_DEFAULT_PORT
    assert c["readinessProbe"]["httpGet"]["port"] == "dashboard"
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert args.state_dir == mounts["state"] == STATE_DIR
    claim = {v["name"]: v for v in head["template"]["spec"]["volumes"]}["state"]
    find("PersistentVolumeClaim", claim["persistentVolumeClaim"]["claimName"])
    assert head["rayStartParams"]["num-cpus"] == "0", "actors must not land on the head"

    (group,) = rc["spec"]["workerGroupSpecs"]
    worker = containers(group["template"]["spec"])[0]
    assert "$KUBERAY_GEN_RAY_START_CMD" in " ".join(worker["args"])
    gpus = worker["resources"]["limits"]["nvidia.com/gpu"]
    assert gpus == 1
    assert group["minReplicas"] >= 1, "the coordinator decides on GPUs from what it sees"
    assert args.local_workers == group["replicas"] * gpus, "one actor per GPU"

    svc = [o for _, o in k8s_objects() if o["kind"] == "Service" and "ray.io/cluster" in str(o)]
    (svc,) = svc
    assert svc["spec"]["selector"] == {
        "ray.io/cluster": rc["metadata"]["name"],
        "ray.io/node-type": "head",
    }
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= set(ports)


def test_rayjob_runs_the_demo_on_gpu_workers():
    job = find("RayJob", "shardgrad-demo")
    words = job["spec"]["entrypoint"].split()
    assert words[0] == "python"
    script = words[1]
    assert script.startswith("/opt/shardgrad/")
    assert (DEPLOY.parent / script.removeprefix("/opt/shardgrad/")).is_file(), script
    from shardgrad.client.demo import build_parser

    demo = build_parser().parse_args(words[2:])  # the demo's own parser accepts them
    assert demo.backend == "ray" and demo.ray_address == "auto"
    spec = job["spec"]["rayClusterSpec"]
    (group,) = spec["workerGroupSpecs"]
    limits = containers(group["template"]["spec"])[0]["resources"]["limits"]
    assert demo.workers == group["replicas"] * limits["nvidia.com/gpu"]
    assert job["spec"]["shutdownAfterJobFinishes"] is True


def test_ray_versions_agree_with_the_images():
    from deploytest_helpers import dockerfiles, parse_dockerfile

    versions = {parse_dockerfile(p).args()["RAY_VERSION"] for p in dockerfiles()}
    assert len(versions) == 1
    (version,) = versions
    assert find("RayCluster", "shardgrad")["spec"]["rayVersion"] == version
    assert find("RayJob", "shardgrad-demo")["spec"]["rayClusterSpec"]["rayVersion"] == version


def test_ray_up_config_starts_a_loopback_coordinator_on_the_head():
    cfg = load_docs(DEPLOY / "ray" / "cluster.yaml")[0]
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type"):
        assert key in cfg
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    assert types[cfg["head_node_type"]]["resources"]["CPU"] == 0
    assert sum(t.get("max_workers", 0) for t in types.values()) <= cfg["max_workers"]
    commands = [
        argv
        for line in cfg["head_start_ray_commands"]
        for argv in shardgrad_commands_in_script(line)
    ]
    (argv,) = commands
    args = parse_cli(argv)
    assert args.pool == "ray" and args.ray_address == "auto"
    assert args.host == "127.0.0.1", "reached through `ray attach -p`, not the open network"
    assert args.port == API_PORT and args.dashboard_port == DASHBOARD_DEFAULT_PORT
    assert any(f"{args.state_dir}" in o for o in cfg["docker"]["run_options"]), "state volume"
    assert cfg["docker"]["image"] in ("shardgrad:cuda", "shardgrad:cpu")
    gpu_nodes = [t for n, t in types.items() if n != cfg["head_node_type"]]
    assert args.local_workers == sum(t["min_workers"] for t in gpu_nodes)


# ---------------------------------------------------------------------- docker compose


def test_compose_file_builds_the_image_and_wires_workers_to_the_coordinator():
    compose = load_docs(DEPLOY / "compose.yaml")[0]
    services = compose["services"]
    coord, worker = services["coordinator"], services["worker"]
    for svc in (coord, worker):
        build = svc["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert (context / "pyproject.toml").is_file()
        assert (context / build["dockerfile"]).is_file()
        assert svc["environment"]["SHARDGRAD_TOKEN"].startswith("${SHARDGRAD_TOKEN:?")

    args = parse_cli([str(a) for a in coord["command"]])
    assert args.command == "serve" and args.host == "0.0.0.0"
    published = {}
    for spec in coord["ports"]:
        host_ip, host_port, container_port = spec.split(":")
        assert host_ip == "127.0.0.1", "publish on the host's loopback only"
        published[int(container_port)] = int(host_port)
    assert published == {args.port: API_PORT, args.dashboard_port: 8275}
    assert f":{args.dashboard_port}/healthz" in " ".join(coord["healthcheck"]["test"])
    volume = coord["volumes"][0].split(":")
    assert volume[1] == args.state_dir and volume[0] in compose["volumes"]

    assert worker["entrypoint"] == ["/bin/sh", "-c"]
    (script,) = worker["command"]
    (argv,) = shardgrad_commands_in_script(script.replace("$$", "$"))
    wargs = parse_cli(argv)
    assert wargs.command == "worker"
    assert wargs.coordinator == f"coordinator:{args.port}"
    assert wargs.host == "0.0.0.0" and option(argv, "--advertise-host") is not None
    assert worker["depends_on"]["coordinator"]["condition"] == "service_healthy"
    assert worker["deploy"]["replicas"] >= 2
    grace = int(worker["stop_grace_period"].rstrip("s"))
    assert grace > wargs.drain_timeout
