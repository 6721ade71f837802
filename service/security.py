"""The coordinator's credentials: its bearer token and, optionally, its TLS certificate.

The token is made once, on the first start with a state directory, and kept in
`<state-dir>/token` readable by its owner alone (0600): clients on the same machine read it
from there (or from `SHARDGRAD_TOKEN`), and a restarted coordinator keeps accepting the same
clients and workers. `SHARDGRAD_TOKEN`, when set, wins over the file, so a secret mounted by a
cluster manager can supply it.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)

TOKEN_FILE = "token"
TOKEN_ENV = "SHARDGRAD_TOKEN"
_TOKEN_BYTES = 32


class CredentialError(RuntimeError):
    """A token or certificate that cannot be used."""


def token_path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / TOKEN_FILE


def ensure_token(state_dir: str | os.PathLike) -> str:
    """The coordinator's token: `SHARDGRAD_TOKEN`, else the state directory's token file,
    created (0600, never readable by others even for an instant) on first use."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    path = token_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_existing(path)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
        f.flush()
        os.fsync(f.fileno())
    log.info("created a bearer token in %s", path)
    return token


def _read_existing(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # Someone loosened it: the secret may have leaked, but refusing to start would lock
        # the owner out of their own jobs. Tighten it and say so.
        log.warning("%s was readable by others (mode %o); setting it to 0600", path, mode)
        os.chmod(path, 0o600)
    text = path.read_text().strip()
    if not text:
        raise CredentialError(f"token file {path} is empty; delete it to make a new token")
    return text.splitlines()[0].strip()


def read_file(path: str | os.PathLike, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CredentialError(f"cannot read the {what} {path}: {exc.strerror}") from None


def server_credentials(cert_file: str | None, key_file: str | None):
    """grpc server credentials for --tls-cert/--tls-key, or None for plain TCP."""
    if not cert_file and not key_file:
        return None
    if not (cert_file and key_file):
        raise CredentialError("--tls-cert and --tls-key go together")
    import grpc  # noqa: PLC0415

    key = read_file(key_file, "TLS key")
    cert = read_file(cert_file, "TLS certificate")
    return grpc.ssl_server_credentials([(key, cert)])


def channel_credentials(ca_file: str | None):
    """grpc channel credentials that trust `ca_file`, or None for plain TCP."""
    if not ca_file:
        return None
    import grpc  # noqa: PLC0415

    return grpc.ssl_channel_credentials(read_file(ca_file, "CA certificate"))
