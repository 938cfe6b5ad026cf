"""Shared test setup: the simulator's pytest plugin (fixtures ``simulator_server`` and
``simulator_transport``), reusable in any project's tests the same way."""

import sys
import types

import msgspec
import orjson


def _install_standin() -> None:
    """TEMPORARY: a tiny world/api/errors until the real modules land (then this goes)."""

    class Reply(msgspec.Struct):
        status: int
        body: bytes
        headers: dict[str, str] = {}

    def graph_error(status, code, message, *, subcode=None, type="OAuthException", is_transient=None,
                    user_title=None, user_msg=None, error_data=None):
        error = {"message": message, "type": type, "code": code}
        if subcode is not None:
            error["error_subcode"] = subcode
        if is_transient is not None:
            error["is_transient"] = is_transient
        error["fbtrace_id"] = "AStandInTrace"
        return Reply(status, orjson.dumps({"error": error}),
                     {"WWW-Authenticate": f'OAuth "Facebook Platform" "invalid_request" "{message}"'})

    class WorldSpec(msgspec.Struct, frozen=True):
        seed: int = 1
        accounts: int = 20
        media_per_account: int = 100
        now: float | None = None
        revoked_tokens: int = 0
        expiring_tokens: tuple[tuple[int, int], ...] = ()

    class TokenInfo(msgspec.Struct, frozen=True):
        token: str
        index: int
        kind: str
        account_ids: tuple[str, ...]
        user_id: str
        revoked: bool = False
        expires_after_calls: int | None = None

    class World:
        def __init__(self, spec):
            self.spec = spec
            self.now = spec.now or 1_790_000_000.0
            expiring = dict(spec.expiring_tokens)
            n = max(1, spec.accounts // 2)
            self.tokens = [TokenInfo(f"EAAstand{spec.seed}x{i}", i, "facebook" if i % 2 == 0 else "instagram",
                                     (f"178414000{i:05d}0", f"178414000{i:05d}1")[: 2 if i % 2 == 0 else 1],
                                     f"10{i}", revoked=i >= n - spec.revoked_tokens,
                                     expires_after_calls=expiring.get(i)) for i in range(n)]
            self._by = {t.token: t for t in self.tokens}

        def token(self, token):
            return self._by.get(token)

        def to_json(self, base_url):
            return {"base_url": base_url, "tokens": [{"token": t.token, "accounts": list(t.account_ids)}
                                                      for t in self.tokens]}

    class GraphApi:
        def __init__(self, world):
            self.world = world

        def handle(self, path, query, token, base_url):
            node = path.split("/")[2]
            return Reply(200, orjson.dumps({"id": token.user_id if node == "me" else node, "query": dict(query)}))

    for name, members in {"errors": (Reply, graph_error), "world": (WorldSpec, TokenInfo, World),
                          "api": (GraphApi,)}.items():
        module = types.ModuleType(f"harvester.simulator.{name}")
        for member in members:
            setattr(module, member.__name__, member)
        sys.modules[module.__name__] = module


try:
    import harvester.simulator.api  # noqa: F401
    import harvester.simulator.errors  # noqa: F401
    import harvester.simulator.world  # noqa: F401
except ImportError:
    _install_standin()

pytest_plugins = ["harvester.simulator.fixtures"]
