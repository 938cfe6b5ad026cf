"""The receiver's settings, ``[webhook]`` and ``[app] secret_env`` of the config, and the secrets they name.

    [webhook]
    host = "127.0.0.1"          # behind the TLS proxy (docs/webhook.md has an nginx snippet)
    port = 8787
    path = "/webhook"
    verify_token_env = "IG_WEBHOOK_VERIFY_TOKEN"
    max_body_bytes = 1048576    # a delivery of 1,000 changes is about 200 KB
    publish_seconds = 300       # file sinks: how often received records become current

    [app]
    secret_env = "IG_APP_SECRET"

``[webhook]`` is a table of the config model (:class:`harvester.config.model.WebhookSettings`,
checked by the config's one parser, so ``harvester validate`` finds a mistake in it); this module
only picks it from a :class:`~harvester.config.Config` and reads the two secrets from the
environment (:func:`secrets`), which never enter a Struct, a message or a repr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..config import Config
from ..config.model import WebhookSettings
from ..errors import ConfigError

__all__ = ["Secrets", "WebhookSettings", "of", "secrets"]


class Secrets:
    """The app secret and the verify token; their repr says nothing of them."""

    __slots__ = ("app_secret", "verify_token")

    def __init__(self, app_secret: bytes, verify_token: str):
        self.app_secret, self.verify_token = app_secret, verify_token

    def __repr__(self) -> str:
        return "Secrets(<not shown>)"


def of(config: Config) -> WebhookSettings:
    """The config's ``[webhook]``, or ConfigError when it has none (the parser checked the rest)."""
    if config.webhook is None:
        raise ConfigError(f"{config.path}: [webhook] is missing; expected a table with at least verify_token_env "
                          "(and [app] secret_env)")
    return config.webhook


def secrets(config: Config, env: Mapping[str, str] | None = None) -> Secrets:
    """Both secrets from the environment, or ConfigError naming the variable that is not set."""
    settings, env = of(config), os.environ if env is None else env
    secret_env = config.app.secret_env or ""        # the parser requires it with [webhook]
    problems = [f"{config.path}: {where} = {name!r}: the variable is not set or empty; expected {what}"
                for where, name, what in (("[app] secret_env", secret_env, "the app secret"),
                                          ("[webhook] verify_token_env", settings.verify_token_env,
                                           "the verify token"))
                if not env.get(name)]
    if problems:
        raise ConfigError(problems)
    return Secrets(env[secret_env].encode(), env[settings.verify_token_env])
