"""The receiver as an aiohttp.web application: ``GET``/``POST`` on ``[webhook] path``, ``GET /healthz``.

A ``POST`` is answered in this order, so that nothing unsigned is parsed and nothing unread is kept:

1. a ``Content-Length`` over ``max_body_bytes`` is refused (413) before a byte of the body is
   read, and a body without one is read in chunks only up to the limit (413 past it); the
   connection is then closed, so the rest is never read;
2. ``X-Hub-Signature-256`` must be the HMAC-SHA256 of the raw body with the app secret (403);
3. the body must be a delivery (400, the message says what is wrong);
4. its ``story_insights`` changes are stored (:class:`~harvester.webhook.store.WebhookStore`),
   and the 200 is sent once they are durable; a storage failure is a 503, which Meta retries.

Meta retries a delivery that got no 200 (for up to 36 hours, less often as time goes by), so
refusing is safe for what can be fixed (the store) and final for what cannot (a bad signature is
never stored). One log line per request (``harvester.webhook`` logger, JSON): status, accounts,
media, metrics, latency; never a secret, a signature or the body. The lines of deliveries
answered in the same turn of the event loop (one group commit) come in one log record, a line
each (:class:`_Lines`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from ..config import Config
from ..errors import ConfigError
from ..telemetry.metrics import EXTRA
from ..telemetry.receiver import ReceiverMetrics
from . import payload, signature
from .settings import Secrets, WebhookSettings
from .settings import of as settings_of
from .settings import secrets as read_secrets
from .store import WebhookStore

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger("harvester.webhook")
STORE: web.AppKey[WebhookStore] = web.AppKey("webhook_store", WebhookStore)
_json = msgspec.json.Encoder()
CHALLENGE_MAX = 256
"""Meta's challenge is a short number; anything longer is not echoed."""


class Receiver:
    """The handlers, with what they need: settings, secrets (never logged), the store."""

    def __init__(self, settings: WebhookSettings, secrets: Secrets, store: WebhookStore,
                 metrics: ReceiverMetrics | None = None):
        self.settings, self.secrets, self.store = settings, secrets, store
        self.signed = signature.Checker(secrets.app_secret)
        self.lines = _Lines()
        self.metrics = metrics
        """Deliveries by result and their latency, for ``/metrics`` (None: prometheus-client missing)."""

    async def verify(self, request: web.Request) -> web.Response:
        """Meta's subscription check: echo ``hub.challenge`` for the right mode and verify token."""
        query = request.query
        token = query.get("hub.verify_token", "")
        challenge = query.get("hub.challenge", "")
        ok = (query.get("hub.mode") == "subscribe" and 0 < len(challenge) <= CHALLENGE_MAX
              and hmac.compare_digest(token.encode(), self.secrets.verify_token.encode()))
        self.store.count("verification/ok" if ok else "verification/refused")
        _log(logging.INFO if ok else logging.WARNING, event="verification", status=200 if ok else 403,
             mode=query.get("hub.mode", "")[:32])
        if not ok:
            return web.Response(status=403, text="verification refused: hub.mode must be subscribe and "
                                                 "hub.verify_token the configured verify token\n")
        return web.Response(text=challenge, content_type="text/plain")

    async def deliver(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        self.store.count("deliveries/received")
        body = await _body(request, self.settings.max_body_bytes)
        if body is None:
            return self._refuse(413, "too_large", started, f"body over {self.settings.max_body_bytes:,} bytes "
                                "([webhook] max_body_bytes)", close=True)
        if not self.signed(body, request.headers.get(signature.HEADER)):
            missing = signature.HEADER not in request.headers
            return self._refuse(403, "signature", started, f"{signature.HEADER} "
                                f"{'missing' if missing else 'does not match the body'}; expected sha256= and "
                                "the HMAC-SHA256 of the body with the app secret")
        try:
            parsed = payload.parse(body)
        except payload.PayloadError as exc:
            return self._refuse(400, "malformed", started, str(exc))
        for field, n in parsed.ignored.items():
            self.store.count(f"ignored/{field}", n)
        stored = duplicates = records = 0
        if parsed.stories:
            try:
                result = await self.store.deliver(parsed.stories)
            except Exception as exc:                     # the sender retries a 503
                return self._refuse(503, "unavailable", started, f"not stored: {type(exc).__name__}: {exc}")
            stored, duplicates, records = result.stories, result.duplicates, result.records
        if self.metrics is not None:
            self.metrics.answered("stored" if stored else "duplicate" if duplicates else "empty",
                                  time.perf_counter() - started)
        if log.isEnabledFor(logging.INFO):
            stories = parsed.stories
            one = len(stories) == 1                      # Meta's usual delivery: nothing to merge or sort
            metrics = [m for m, _ in stories[0].metrics] if one else sorted({m for s in stories for m, _ in s.metrics})
            self.lines.add(event="delivery", status=200,
                           accounts=[stories[0].account_id] if one else sorted({s.account_id for s in stories}),
                           media=[s.media_id for s in stories], metrics=metrics, stored=stored,
                           duplicates=duplicates, records=records, ignored=parsed.ignored, latency_ms=_ms(started))
        return web.Response(body=_json.encode({"stored": stored, "duplicates": duplicates, "records": records}),
                            content_type="application/json")

    def _refuse(self, status: int, reason: str, started: float, message: str, *, close: bool = False) -> web.Response:
        self.store.count(f"refused/{reason}")
        if self.metrics is not None:
            self.metrics.answered(reason, time.perf_counter() - started)
        _log(logging.WARNING, event="delivery", status=status, refused=reason, reason=message[:300],
             latency_ms=_ms(started))
        response = web.Response(status=status, text=message + "\n")
        if close:
            response.force_close()
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        """For the orchestrator: 200 while deliveries can be stored, 503 otherwise."""
        running = self.store.running
        return web.json_response({"status": "ok" if running else "unavailable", "segment": self.store.run_id,
                                  "counters": dict(self.store.counts)}, status=200 if running else 503)


    async def metrics_page(self, request: web.Request) -> web.Response:
        """For Prometheus: deliveries by result, their latency (``harvester[prometheus]``)."""
        if self.metrics is None:
            return web.Response(status=503, text=f"no metrics: prometheus-client is not installed ({EXTRA})\n")
        body, content_type = self.metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})


async def _body(request: web.Request, limit: int) -> bytes | None:
    """The raw body, or None past ``limit`` (never more than the limit is held)."""
    length = request.content_length
    if length is not None:
        if length > limit:
            return None
        try:
            return await request.content.readexactly(length)    # one call for a body of known length
        except asyncio.IncompleteReadError as exc:             # the sender hung up: what came (unsigned)
            return exc.partial
    chunks = bytearray()
    async for chunk in request.content.iter_any():
        chunks += chunk
        if len(chunks) > limit:
            return None
    return bytes(chunks)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _log(level: int, **fields: Any) -> None:
    """One JSON line. The record is made here, not by ``Logger.log``, which would walk the stack
    for the caller's file and line (a third of a line's cost, and the same place every time)."""
    if log.isEnabledFor(level):
        log.handle(log.makeRecord(log.name, level, __file__, 0, _json.encode(fields).decode(), (), None))


class _Lines:
    """The ``200`` lines of one turn of the event loop, handed to logging as one record, a line
    each. A group commit answers its deliveries in the same turn, and a log record (made,
    formatted, written, flushed) cost the receiver about as much CPU as the rest of a delivery's
    own work (bench/webhook.py, issue #15); one record a group keeps a line per delivery."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []

    def add(self, **fields: Any) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending.append(_json.encode(fields))

    def flush(self) -> None:
        lines, self.pending = self.pending, []
        if lines:
            log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, b"\n".join(lines).decode(), (), None))


def make_app(settings: WebhookSettings, secrets: Secrets, store: WebhookStore, *, own_store: bool = True,
             registry: CollectorRegistry | None = None) -> web.Application:
    """The application; with ``own_store`` it starts the store on startup and closes it on cleanup.
    Its metrics go to ``registry`` (a new one by default: a service passes its own)."""
    try:
        metrics: ReceiverMetrics | None = ReceiverMetrics(registry)
    except ConfigError:
        metrics = None                                   # /metrics says which extra is missing
    receiver = Receiver(settings, secrets, store, metrics)
    app = web.Application()
    app[STORE] = store
    app.router.add_get(settings.path, receiver.verify)
    app.router.add_post(settings.path, receiver.deliver)
    app.router.add_get("/healthz", receiver.healthz)
    app.router.add_get("/metrics", receiver.metrics_page)
    if own_store:
        async def lifecycle(app: web.Application):
            await store.start()
            yield
            await store.close()
        app.cleanup_ctx.append(lifecycle)
    return app


def store_for(config: Config, settings: WebhookSettings) -> WebhookStore:
    return WebhookStore(config.output, config.state.path, publish_seconds=settings.publish_seconds,
                        config_path=config.path)


def app_for(config: Config, *, env: Mapping[str, str] | None = None) -> web.Application:
    """The receiver of a config: its ``[webhook]`` and ``[app] secret_env``, its output and state."""
    settings = settings_of(config)
    return make_app(settings, read_secrets(config, env), store_for(config, settings))


async def serve(config: Config, *, env: Mapping[str, str] | None = None,
                ready: Callable[[str], None] | None = None) -> int:
    """``harvester webhook``: serve until SIGINT/SIGTERM, then publish what was received and exit 0.
    Secrets and the store are checked before the port is opened (ConfigError, exit 2)."""
    settings = settings_of(config)
    app = make_app(settings, read_secrets(config, env), store_for(config, settings))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"{config.path}: [webhook] host = {settings.host!r}, port = {settings.port}: cannot "
                              f"listen: {exc.strerror or exc}") from None
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}{settings.path}"
        (ready or (lambda u: print(f"webhook: listening on {u} (GET /healthz)", file=sys.stderr, flush=True)))(url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()                 # the store publishes its segment and closes
    return 0
