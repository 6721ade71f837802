"""The coordinator's bearer token: made once, private, reused, overridable."""

from __future__ import annotations

import os
import stat

import pytest

from shardgrad.service.security import (
    CredentialError,
    ensure_token,
    server_credentials,
    token_path,
)


@pytest.fixture(autouse=True)
def no_env_token(monkeypatch):
    monkeypatch.delenv("SHARDGRAD_TOKEN", raising=False)


def test_the_first_start_makes_a_private_token_and_later_starts_reuse_it(tmp_path):
    token = ensure_token(tmp_path / "state")
    path = token_path(tmp_path / "state")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 32 and token == path.read_text().strip()
    assert ensure_token(tmp_path / "state") == token
    assert ensure_token(tmp_path / "other") != token


def test_a_token_file_readable_by_others_is_tightened(tmp_path):
    token = ensure_token(tmp_path)
    os.chmod(token_path(tmp_path), 0o644)
    assert ensure_token(tmp_path) == token
    assert stat.S_IMODE(token_path(tmp_path).stat().st_mode) == 0o600


def test_an_empty_token_file_is_refused(tmp_path):
    token_path(tmp_path).write_text("\n")
    with pytest.raises(CredentialError, match="empty"):
        ensure_token(tmp_path)


def test_the_environment_wins_over_the_file(tmp_path, monkeypatch):
    ensure_token(tmp_path)
    monkeypatch.setenv("SHARDGRAD_TOKEN", "from-the-environment")
    assert ensure_token(tmp_path) == "from-the-environment"


def test_tls_needs_both_certificate_and_key(tmp_path):
    assert server_credentials(None, None) is None
    with pytest.raises(CredentialError, match="go together"):
        server_credentials(str(tmp_path / "cert.pem"), None)
    with pytest.raises(CredentialError, match="cannot read"):
        server_credentials(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
