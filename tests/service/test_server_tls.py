"""`shardgrad serve --tls-cert/--tls-key`: the API speaks TLS only, and local workers verify
the coordinator's certificate before they join."""

from __future__ import annotations

import datetime
import ipaddress
import json

import grpc
import pytest
from _servertest import mlp_config, pb

from shardgrad.protos import coordinator_pb2_grpc


def _self_signed(tmp_path):
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shardgrad test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_api_with_a_local_worker(procs, tmp_path):
    cert, key = _self_signed(tmp_path)
    state = tmp_path / "state"
    server = procs.serve(
        state,
        ["--tls-cert", str(cert), "--tls-key", str(key), "--local-workers", "1"],
        0,
    )
    address = server.wait_line("shardgrad coordinator listening on", 60).rsplit(" ", 1)[1]
    metadata = (("authorization", f"Bearer {(state / 'token').read_text().strip()}"),)

    plain = grpc.insecure_channel(address)
    with pytest.raises(grpc.RpcError) as e:
        coordinator_pb2_grpc.CoordinatorStub(plain).ListJobs(
            pb.ListJobsRequest(), metadata=metadata, timeout=5
        )
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    plain.close()

    creds = grpc.ssl_channel_credentials(cert.read_bytes())
    with grpc.secure_channel(address, creds) as channel:
        stub = coordinator_pb2_grpc.CoordinatorStub(channel)
        job = stub.SubmitJob(
            pb.SubmitJobRequest(config_json=json.dumps(mlp_config(steps=4))),
            metadata=metadata,
            timeout=60,
        )
        # The step needs the local worker: it joined over TLS, trusting --tls-cert.
        for event in stub.StreamMetrics(
            pb.StreamMetricsRequest(job_id=job.job_id, follow=True), metadata=metadata, timeout=60
        ):
            last = event
        assert last.step == 4 and last.workers == 1
        # A followed stream ends once the job has: the job's own record says how. (The last
        # event carries the state read with it, which may still be RUNNING: the loop writes
        # its last metrics before its final state.)
        done = stub.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=metadata, timeout=10)
        assert done.state == pb.JOB_STATE_SUCCEEDED
