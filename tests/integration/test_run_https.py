"""`siaga run` with `[web] tls_cert` and `tls_key`: the whole stack, in a process of its own,
serves its console and /healthz over HTTPS only (verified against the self-signed CA), with
HSTS, and says so in its banner."""

from __future__ import annotations

import asyncio
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest
from integration.conftest import SiagaRun, run_config, wait_for

from pbx.asterisk import AsteriskInstance
from siaga.config import Config
from stack.certificate import CertificatePair
from supervisor.web import HSTS

pytestmark = pytest.mark.integration


async def test_siaga_run_serves_the_console_over_https_only(
    asterisk: AsteriskInstance,
    stack_config: Config,
    tls_pair: CertificatePair,
    tmp_path: Path,
) -> None:
    path = tmp_path / "siaga.toml"
    run_config(path, stack_config, asterisk, phones=False)
    text = path.read_text().replace(
        "[web]\n", f'[web]\ntls_cert = "{tls_pair.cert}"\ntls_key = "{tls_pair.key}"\n', 1
    )
    path.write_text(text)
    run = SiagaRun(path, tmp_path / "state", stack_config.web.port)
    base = f"127.0.0.1:{stack_config.web.port}"
    trusting = ssl.create_default_context(cafile=str(tls_pair.cert))
    with run.log.open("ab") as log:
        run.process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "stack.cli", "--config", str(path), "run"),
            env=run.env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting)) as http:

            async def healthy() -> aiohttp.ClientResponse | None:
                try:
                    async with http.get(f"https://{base}/healthz") as response:
                        return response if response.status == 200 else None
                except aiohttp.ClientError:
                    return None

            response = await wait_for(healthy, timeout=30, what="`siaga run` healthy over HTTPS")
            assert response.headers["Strict-Transport-Security"] == HSTS
            async with http.get(f"https://{base}/login") as page:
                assert page.status == 200
                assert page.cookies["siaga_csrf"]["secure"] is True
            with pytest.raises(aiohttp.ClientError):  # no plain HTTP beside it
                async with http.get(f"http://{base}/healthz") as plain:
                    await plain.read()
        printed = run.log.read_text()
        assert f"console:       https://{base}/" in printed
    finally:
        assert await run.stop() == 0, run.log.read_text()[-3000:]
