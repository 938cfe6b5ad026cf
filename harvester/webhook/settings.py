"""``[webhook]`` and ``[app] secret_env``: where the receiver listens and which variables hold its secrets.

    [webhook]
    host = "127.0.0.1"          # behind the TLS proxy (docs/webhook.md has an nginx snippet)
    port = 8787
    path = "/webhook"
    verify_token_env = "IG_WEBHOOK_VERIFY_TOKEN"
    max_body_bytes = 1048576    # a delivery of 1,000 changes is about 200 KB
    publish_seconds = 300       # how often received records become current in the output

    [app]
    secret_env = "IG_APP_SECRET"

Read from the config file's TOML beside the harvest's own tables; the secrets themselves are read
from the environment only by :func:`secrets`, never stored in a Struct, a message or a repr.
(``[app]`` is shared with ``harvester tokens``: it is read by the same rule,
``config.tokens.app_settings``; the receiver needs only ``secret_env``.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from ..config import read_toml
from ..config.problems import Problems, ValueRule, _at_least, _checked, _table
from ..config.tokens import app_settings
from ..errors import ConfigError

_ENV = ValueRule((str,), lambda v: re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v) is not None,
                 'the name of an environment variable, e.g. "IG_APP_SECRET"')
RULES: dict[str, ValueRule] = {
    "host": ValueRule((str,), bool, 'a host name or address, e.g. "127.0.0.1"'),
    "port": ValueRule((int,), lambda v: 0 <= v <= 65535, "a port number from 0 to 65535 (0: any free port)"),
    "path": ValueRule((str,), lambda v: v.startswith("/") and v != "/healthz" and " " not in v,
                      'a URL path starting with "/" other than "/healthz", e.g. "/webhook"'),
    "verify_token_env": _ENV,
    "max_body_bytes": ValueRule((int,), _at_least(1024), "a whole number of bytes >= 1024"),
    "publish_seconds": ValueRule((int, float), lambda v: v > 0, "a number of seconds > 0"),
}


class WebhookSettings(msgspec.Struct, frozen=True):
    verify_token_env: str
    secret_env: str
    host: str = "127.0.0.1"
    port: int = 8787
    path: str = "/webhook"
    max_body_bytes: int = 1 << 20
    """A body over this is refused (413) without being read whole."""
    publish_seconds: float = 300.0
    """Received records are published (made current, replacing older values of the same key) this often."""


class Secrets:
    """The app secret and the verify token; their repr says nothing of them."""

    __slots__ = ("app_secret", "verify_token")

    def __init__(self, app_secret: bytes, verify_token: str):
        self.app_secret, self.verify_token = app_secret, verify_token

    def __repr__(self) -> str:
        return "Secrets(<not shown>)"


def parse(raw: Mapping[str, Any], path: str) -> WebhookSettings:
    """The receiver's settings from a config's TOML, or ConfigError naming every mistake."""
    p = Problems(path)
    if "webhook" not in raw:
        p.add("[webhook] is missing; expected a table with at least verify_token_env (and [app] secret_env)")
        p.raise_any()
    table = _table(p, raw["webhook"], "[webhook]")
    values = _checked(p, table, RULES, "[webhook]")
    secret_env = app_settings(p, dict(raw)).secret_env     # the [app] rules every command shares
    if "verify_token_env" not in table:
        p.add("[webhook] verify_token_env is missing; expected the name of the environment variable holding "
              "the verify token you gave Meta's App Dashboard")
    app = raw.get("app", {})
    if secret_env is None and not (isinstance(app, dict) and "secret_env" in app):   # else app_settings said why
        p.add("[app] secret_env is missing; expected the name of the environment variable holding the app "
              "secret (App Dashboard > App settings > Basic), which signs every delivery")
    p.raise_any()
    return WebhookSettings(secret_env=str(secret_env), **values)


def load(config_path: str) -> WebhookSettings:
    return parse(read_toml(config_path), config_path)


def secrets(settings: WebhookSettings, path: str, env: Mapping[str, str] | None = None) -> Secrets:
    """Both secrets from the environment, or ConfigError naming the variable that is not set."""
    env = os.environ if env is None else env
    problems = [f"{path}: {where} = {name!r}: the variable is not set or empty; expected {what}"
                for where, name, what in (("[app] secret_env", settings.secret_env, "the app secret"),
                                          ("[webhook] verify_token_env", settings.verify_token_env,
                                           "the verify token"))
                if not env.get(name)]
    if problems:
        raise ConfigError(problems)
    return Secrets(env[settings.secret_env].encode(), env[settings.verify_token_env])
