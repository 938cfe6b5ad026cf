"""A real Prometheus Pushgateway (Debian's ``prometheus-pushgateway``, which the Makefile installs
where missing) on a free loopback port, for the telemetry tests: started, read back, stopped."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harvester.ports import free_port


def binary() -> str | None:
    return shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")


class Pushgateway:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="pushgateway-")
        self._proc: subprocess.Popen | None = None

    async def start(self) -> Pushgateway:
        path = binary()
        if path is None:
            if os.environ.get("CI") == "true":
                pytest.fail("prometheus-pushgateway is not installed (make install installs it)")
            pytest.skip("prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway)")
        self._proc = subprocess.Popen([path, f"--web.listen-address=127.0.0.1:{self.port}",
                                       f"--persistence.file={Path(self._dir.name) / 'data'}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        async with aiohttp.ClientSession() as session:
            for _ in range(200):                     # up to 10 s for it to listen
                try:
                    async with session.get(f"{self.url}/-/ready") as reply:
                        if reply.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"the pushgateway did not start on {self.url}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        self._dir.cleanup()

    async def samples(self) -> dict[tuple[str, frozenset], float]:
        """Every sample it serves: (name, its labels) -> value."""
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/metrics") as reply:
            text = await reply.text()
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float | None:
    """The one sample of ``name`` whose labels include ``labels`` (None if there is none)."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None
