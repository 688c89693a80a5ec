"""A TLS cluster on loopback: the certificate holder measures through it (also via the
CLI), a client without the certificate, or with another CA's, is refused."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from distributed.security import Security

from moo_compress.dispatch import connect
from moo_compress.dispatch.retry import RetryPolicy
from moo_compress.run import main
from moo_compress.session import candidate_devices
from moo_compress.worker_devices import register, unregister

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"


@pytest.fixture(scope="module")
def tls_cluster():
    """A TLS scheduler and worker on 127.0.0.1 holding the tiny problem's devices."""
    spec = importlib.util.spec_from_file_location("tiny_for_tls", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    problem = module.TinyFleet(seed=3)
    devices = [d for g in candidate_devices(problem.clusters, RetryPolicy()) for d in g]
    tags = {register(d): 1 for d in devices}
    security = Security.temporary()
    with LocalCluster(
        n_workers=1,
        threads_per_worker=len(devices) + 1,
        processes=False,
        protocol="tls://",
        host="127.0.0.1",
        security=security,
        dashboard_address=None,
        resources=tags,
    ) as cluster:
        yield cluster, security
    for d in devices:
        unregister(d.device_id)


def test_scheduler_listens_on_loopback_with_tls(tls_cluster):
    cluster, _ = tls_cluster
    assert cluster.scheduler_address.startswith("tls://127.0.0.1:")


def _refused(address: str, security: Security | None) -> BaseException | None:
    """What connecting a client with ``security`` to ``address`` raises (None: it
    connected). The client lives in an event loop of its own and is always closed: a
    synchronous ``Client`` whose constructor fails keeps its event-loop thread running
    and stays the default client until the garbage collector closes it, from whatever
    thread happens to collect it, while later clients (here or in later tests) are at
    work."""

    async def attempt() -> BaseException | None:
        client = Client(
            address, security=security, timeout=5, asynchronous=True, set_as_default=False
        )
        try:
            await client
        except Exception as exc:
            return exc
        finally:
            await client.close()
        return None

    return asyncio.run(attempt())


def test_certificate_holder_connects_others_are_refused(tls_cluster):
    """The holder's deadlines are generous (a loaded CI machine); a refusal is an
    exception from the TLS layer, never a connection."""
    cluster, security = tls_cluster
    with connect(cluster.scheduler_address, security, timeout_s=60) as client:
        assert client.submit(sum, [1, 2], pure=False).result(timeout=60) == 3
    no_certificate = _refused(cluster.scheduler_address, None)
    assert isinstance(no_certificate, OSError | TypeError | ValueError), repr(no_certificate)
    other_ca = _refused(cluster.scheduler_address, Security.temporary())
    assert isinstance(other_ca, OSError), repr(other_ca)


def test_cli_measures_through_the_tls_scheduler(tls_cluster, tmp_path, capsys):
    cluster, security = tls_cluster
    files = {}
    for name, pem in (
        ("ca", security.tls_ca_file),
        ("cert", security.tls_client_cert),
        ("key", security.tls_client_key),
    ):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_text(pem)
    out = tmp_path / "run"
    base = [str(TINY), "--out", str(out), "--seed", "3", "--scheduler", cluster.scheduler_address]
    tls = ["--tls-ca-file", str(files["ca"]), "--tls-cert", str(files["cert"])]
    tls += ["--tls-key", str(files["key"])]
    assert main([*base, *tls]) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["measurements"]["latency_total"] > 0 and summary["degraded_clusters"] == {}

    assert main([*base[:2], str(tmp_path / "refused"), *base[3:]]) == 2  # no certificate
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot connect to scheduler") and len(err.splitlines()) == 1
