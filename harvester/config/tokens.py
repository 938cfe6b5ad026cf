"""Where tokens come from: ``token_env`` or ``token_file`` (exactly one per table), the login
kind, ``[[discover]]`` tables and ``[app]``. A token's value is read only to check it is there;
it never enters a Struct, a message or a repr."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .model import LOGINS, Account, AppSettings, Discover, token_name
from .problems import _TOKEN_LIKE, Problems, _kind, _show, _strings, _unknown

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DISCOVER_KEYS = ("token_env", "token_file", "login", "include", "exclude")
TOKEN_EXPECTED = ('token_env (the name of the environment variable holding the token, e.g. "IG_TOKEN_MAIN") '
                  'or token_file (a file holding only the token, e.g. "tokens/main.token")')


def token_source(p: Problems, entry: dict, where: str) -> tuple[str, str | None] | None:
    """``(token_env, token_file)`` of a table, exactly one of them given; None after a problem."""
    has_env, has_file = "token_env" in entry, "token_file" in entry
    if has_env == has_file:
        p.add(f"{where} has {'both token_env and token_file' if has_env else 'neither token_env nor token_file'}; "
              f"expected exactly one: {TOKEN_EXPECTED}")
        return None
    if has_env:
        return (entry["token_env"], None) if env_name_ok(p, entry["token_env"], f"{where}.token_env") else None
    path = entry["token_file"]
    if not isinstance(path, str) or not path.strip():
        p.add(f"{where}.token_file = {_show(path)} is not valid; expected a non-empty path to a file holding the token")
        return None
    return "", path


def env_name_ok(p: Problems, value: Any, where: str) -> bool:
    if isinstance(value, str) and _TOKEN_LIKE.fullmatch(value):
        p.add(f"{where} looks like an access token itself (not shown); expected the name of the environment "
              f'variable holding its token, e.g. "IG_TOKEN_MAIN"')
    elif not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        p.add(f"{where} = {_show(value)} is not a valid environment variable name; expected letters, digits "
              f"and _, not starting with a digit")
    else:
        return True
    return False


def login(p: Problems, entry: dict, where: str) -> str | None:
    value = entry.get("login", "facebook")
    if value not in LOGINS:
        p.add(f"{where}.login = {_show(value)} is not valid; expected \"facebook\" (Facebook Login, graph.facebook.com,"
              f" the default) or \"instagram\" (Instagram Login, graph.instagram.com)")
        return None
    return str(value)


def discover_tables(p: Problems, raw: dict) -> tuple[Discover, ...]:
    entries = raw.get("discover", [])
    if not isinstance(entries, list):
        p.add(f"discover is {_kind(entries)}; expected [[discover]] tables with token_env or token_file")
        return ()
    found = [_discover(p, entry, f"discover[{i}]") for i, entry in enumerate(entries)]
    return tuple(d for d in found if d is not None)


def _discover(p: Problems, entry: Any, where: str) -> Discover | None:
    if not isinstance(entry, dict):
        p.add(f"{where} is {_kind(entry)}; expected a table with token_env or token_file")
        return None
    before = len(p.messages)
    _unknown(p, entry, DISCOVER_KEYS, where)
    source, kind = token_source(p, entry, where), login(p, entry, where)
    lists = {key: _names(p, entry[key], f"{where}.{key}") for key in ("include", "exclude") if key in entry}
    if source is None or kind is None or len(p.messages) > before:
        return None
    return Discover(source[0], source[1], kind,  # type: ignore[arg-type]
                    include=lists.get("include") or (), exclude=lists.get("exclude") or ())


def _names(p: Problems, value: Any, where: str) -> tuple[str, ...] | None:
    names = _strings(p, value, where)
    if names is None:
        return None
    bad = next((n for n in names if not n.strip()), None)
    if bad is not None:
        p.add(f"{where} has an empty name; expected account ids (digits) or usernames")
        return None
    return tuple(n.strip().lstrip("@") for n in names)


def app_settings(p: Problems, raw: dict) -> AppSettings:
    table = raw.get("app", {})
    if not isinstance(table, dict):
        p.add(f"[app] is {_kind(table)}; expected a table with id_env and secret_env")
        return AppSettings()
    _unknown(p, table, ("id_env", "secret_env"), "[app]")
    given = [k for k in ("id_env", "secret_env") if k in table]
    if given == ["id_env"]:
        # secret_env alone is enough for the webhook's signatures; an id is of no use without it
        p.add("[app] has id_env but not secret_env; expected both (the app token is id|secret) or secret_env alone "
              "(for the webhook)")
        return AppSettings()
    if not given or not all(env_name_ok(p, table[k], f"[app] {k}") for k in given):
        return AppSettings()
    return AppSettings(table.get("id_env"), table["secret_env"])


def one_login_per_token(p: Problems, accounts: tuple[Account, ...], discover: tuple[Discover, ...]) -> None:
    """A token is of one login kind: a name given two would send it to the wrong host."""
    seen: dict[str, str] = {}
    for where, table in _tables(accounts, discover):
        name = table.token_name
        first = seen.setdefault(name, table.login)
        if first != table.login:
            p.add(f"{where}.login = {_show(table.login)} but the same token ({name}) is login = {_show(first)} "
                  f"elsewhere; expected one login kind per token")


def tokens_set(p: Problems, accounts: tuple[Account, ...], discover: tuple[Discover, ...], app: AppSettings,
               env: Mapping[str, str]) -> None:
    """Every variable set and every token file readable and non-empty (values never read out)."""
    files = {t.token_file: where for where, t in _tables(accounts, discover) if t.token_file is not None}
    for path, where in files.items():
        problem = token_file_problem(path)
        if problem:
            p.add(f"{where}.token_file = {_show(path)}: {problem}")
    for i, d in enumerate(discover):
        if d.token_file is None and not env.get(d.token_env) and d.token_env not in {a.token_env for a in accounts}:
            p.add(f"discover[{i}].token_env = {_show(d.token_env)}: the environment variable is not set or empty; "
                  f"expected it to hold the access token whose accounts are discovered")
    if app.configured:
        for key, name in (("id_env", app.id_env), ("secret_env", app.secret_env)):
            if name is not None and not env.get(name):
                p.add(f"[app] {key} = {_show(name)}: the environment variable is not set or empty; expected the "
                      f"app's {'id' if key == 'id_env' else 'secret'}")


def _tables(accounts: tuple[Account, ...], discover: tuple[Discover, ...]) -> list[tuple[str, Account | Discover]]:
    """Every table that names a token, with where it is in the file."""
    return [*((f"accounts[{i}]", a) for i, a in enumerate(accounts)),
            *((f"discover[{i}]", d) for i, d in enumerate(discover))]


def token_file_problem(path: str) -> str | None:
    """What keeps the file from giving a token, or None."""
    try:
        with open(path, "rb") as f:
            data = f.read(64 * 1024)
    except OSError as exc:
        return f"cannot be read: {exc.strerror}; expected a file holding only the access token"
    if not data.strip():
        return "the file is empty; expected it to hold the access token"
    return None


def read_token_file(path: str) -> str | None:
    """The token a file holds (surrounding whitespace dropped), or None if there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def resolve(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The token of a token name (variable, or ``file:<path>``) from the environment or the file."""
    if name.startswith("file:"):
        return read_token_file(name[len("file:"):])
    return (os.environ if env is None else env).get(name) or None


__all__ = ["token_name"]
