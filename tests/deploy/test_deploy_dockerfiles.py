"""The Dockerfiles, read as docker reads them (no image is built here): they copy every
package, install extras that exist, run as a non-root user, expose the ports the manifests
use, and start the `shardgrad` command with arguments its parser accepts."""

from __future__ import annotations

import re
import shlex

import pytest
from deploytest_helpers import (
    DEPLOY,
    ROOT,
    dockerfiles,
    env_vars_read_by_shardgrad,
    parse_cli,
    parse_dockerfile,
    pyproject,
)
from packaging.requirements import Requirement
from packaging.version import Version

# coordinator API, dashboard, gRPC worker: the ports every manifest in deploy/ uses.
PORTS = {50051, 8275, 50052}
STATE_DIR = "/var/lib/shardgrad"

FILES = {p.name: p for p in dockerfiles()}


def test_a_cpu_and_a_cuda_dockerfile_exist():
    assert set(FILES) == {"Dockerfile", "Dockerfile.cuda"}


@pytest.fixture(params=sorted(FILES))
def dockerfile(request):
    return parse_dockerfile(FILES[request.param])


def test_base_image_and_python_version(dockerfile):
    base = dockerfile.all("FROM")
    assert len(base) == 1, "one stage"
    image = base[0].args
    assert ":" in image and not image.endswith(":latest"), "pin the base image"
    if dockerfile.path.name == "Dockerfile":
        assert image.startswith("python:3.12")
    else:
        assert image.startswith("nvidia/cuda:12.") and "ubuntu24.04" in image  # Python 3.12
    requires = pyproject()["project"]["requires-python"]
    assert requires == ">=3.11"


def test_copies_every_package_of_the_distribution(dockerfile):
    copied = set()
    for inst in dockerfile.all("COPY"):
        words = shlex.split(inst.args)
        assert not any(w.startswith("--from") for w in words)
        *sources, _dest = words
        for src in sources:
            assert (ROOT / src).exists(), f"{dockerfile.path.name}: COPY {src} does not exist"
            copied.add(src.rstrip("/"))
    package_dirs = set(pyproject()["tool"]["setuptools"]["package-dir"].values())
    assert package_dirs <= copied, f"missing {package_dirs - copied}"
    assert {"pyproject.toml", "README.md"} <= copied, "pip needs both to build the package"
    assert "examples" in copied, "the RayJob runs examples/demo.py from the image"


def test_installs_existing_extras_and_the_pinned_ray(dockerfile):
    (install,) = [i for i in dockerfile.all("RUN") if "pip install" in i.args]
    extras_known = set(pyproject()["project"]["optional-dependencies"])
    (local,) = re.findall(r'"\.\[([a-z,]+)\]"', install.args)
    extras = set(local.split(","))
    assert "service" in extras and extras <= extras_known
    assert ("cuda" in extras) == dockerfile.path.name.endswith(".cuda")
    ray_version = dockerfile.args()["RAY_VERSION"]
    assert '"ray[default]==${RAY_VERSION}"' in install.args
    (ray_req,) = [
        Requirement(r)
        for r in pyproject()["project"]["optional-dependencies"]["ray"]
        if r.startswith("ray")
    ]
    assert Version(ray_version) in ray_req.specifier, "the image's Ray satisfies the ray extra"


def test_runs_as_an_unprivileged_user_owning_the_state_volume(dockerfile):
    user = dockerfile.one("USER").args
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000
    (create,) = [i for i in dockerfile.all("RUN") if "useradd" in i.args]
    assert f"--uid {uid}" in create.args and f"chown shardgrad:shardgrad {STATE_DIR}" in create.args
    assert dockerfile.one("VOLUME").json_args() == [STATE_DIR]
    env = dockerfile.env()
    assert env["SHARDGRAD_STATE_DIR"] == STATE_DIR, "`shardgrad` clients in the image find it"
    for name in env:
        if name.startswith("SHARDGRAD_"):
            assert name in env_vars_read_by_shardgrad()
    # The last USER wins: nothing after it runs as root.
    order = [i.keyword for i in dockerfile.instructions]
    assert "RUN" not in order[order.index("USER") :]


def test_exposes_the_ports_and_starts_the_shardgrad_command(dockerfile):
    exposed = {int(p.split("/")[0]) for p in dockerfile.one("EXPOSE").args.split()}
    assert exposed == PORTS
    entry = dockerfile.one("ENTRYPOINT").json_args()
    assert entry == ["shardgrad"]
    assert pyproject()["project"]["scripts"]["shardgrad"] == "shardgrad.client.cli:main"
    cmd = dockerfile.one("CMD").json_args()
    args = parse_cli(cmd)
    assert args.command == "serve"
    assert args.state_dir == STATE_DIR
    assert args.host == "0.0.0.0", "a container is reached through its published ports"
    assert {args.port, args.dashboard_port} <= PORTS


def test_both_images_run_the_same_default_command_and_ray():
    cpu, cuda = (parse_dockerfile(FILES[n]) for n in ("Dockerfile", "Dockerfile.cuda"))
    assert cpu.one("CMD").json_args() == cuda.one("CMD").json_args()
    assert cpu.args()["RAY_VERSION"] == cuda.args()["RAY_VERSION"]


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    ignore = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", ".git"):
        assert entry in ignore
    for path in (DEPLOY / "docker").iterdir():
        assert path.name.startswith("Dockerfile")
