"""Which accounts a run harvests, and with which token: the listed ones, those its ``[[discover]]``
tables find, and the work earlier runs owe for them.

- **Claims.** An account is harvested once per run, with one token: a listed account with its own,
  a discovered one with the token of the first table (in config order) that found it, whatever
  discovery answers first; a table waits for the ones before it (a few calls each).
- **Owed work.** What earlier runs owe for an account is asked again with its own job (its
  windows) or on its own (insights units its plan may not hold any more), for as long as the API
  keeps it; what it no longer keeps is reported failed, once, and forgotten.
- **Failures.** A token that is missing or dies fails every account it was to harvest, once,
  in the summary and in the state.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import msgspec

from .. import summary as stat
from ..config import Config, Window
from ..graph.policy import Action, Decision
from ..plan.units import Unit
from ..state.store import Owed, StateStore
from ..summary import Outcome, Stats
from ..tokens.discovery import Found
from .discover import DiscoverJob
from .jobs import AccountJob, InsightsJob, JobContext, Listed
from .keys import TokenKeys
from .ledger import Ledger


class Accounts:
    """The accounts of one run (see the module's docstring); :meth:`start` submits their jobs."""

    def __init__(self, config: Config, keys: TokenKeys, stats: Stats, *, run_id: str, now: float,
                 state: StateStore | None = None):
        self.config, self.keys, self.stats, self.state = config, keys, stats, state
        self.run_id, self.now = run_id, now
        self._ctx: JobContext | None = None
        self._claimed: dict[str, str] = {}
        """Account id -> the token name it is harvested with (listed accounts first)."""
        self._discovered: defaultdict[str, list[str]] = defaultdict(list)
        """Token name -> the accounts discovered with it (and harvested with it)."""
        self._discoveries: dict[int, tuple[list[Found], Decision | None]] = {}
        """Tables settled out of order, waiting for the ones before them."""
        self._released = 0

    def __repr__(self) -> str:
        return f"Accounts(claimed={len(self._claimed)}, discovered={sum(map(len, self._discovered.values()))})"

    @property
    def discovered(self) -> dict[str, list[str]]:
        """Token name -> the accounts discovered with it and harvested with it in this run."""
        return dict(self._discovered)

    def listed(self) -> list[str]:
        """The listed accounts this run (or shard) harvests."""
        return [a.id for a in self.config.accounts if self.keys.in_shard(a.token_name)]

    def start(self, ctx: JobContext, owed: Sequence[Owed]) -> None:
        """Report the tokens that are missing; submit the listed accounts' jobs (``owed``: what
        earlier runs owe for them, from :meth:`owed`) and a discovery job per table."""
        self._ctx = ctx
        for env, problem in self.keys.missing.items():
            self._account_failed(env, Decision(Action.FAIL_TOKEN, "no access token"), problem)
        self._claimed = {a.id: a.token_name for a in self.config.accounts}
        keys = self.keys.keys
        self._submit(ctx, [(a.id, keys[a.token_name]) for a in self.config.accounts
                           if a.token_name in keys and self.keys.in_shard(a.token_name)], owed)
        self._discover(ctx)

    def owed(self, account_ids: Sequence[str]) -> list[Owed]:
        """What earlier runs owe for these accounts and the API still keeps; what it no longer
        keeps is reported failed, once, and forgotten."""
        if self.state is None or not account_ids:
            return []
        owed = self.state.owed(account_ids)
        lost = [o for o in owed if o.expires_at <= self.now]
        for o in lost:
            self.stats.fail(Outcome(o.account_id, o.owed_id, f"owed by run {o.run_id} ({o.reason}), but the API "
                                                             "no longer keeps it"))
        self.state.forget(o.owed_id for o in lost)
        kept = [o for o in owed if o.expires_at > self.now]
        for run_id, n in Counter(o.run_id for o in kept if o.run_id != self.run_id).items():
            self.stats.carried_over(run_id, n)
        return kept

    def _submit(self, ctx: JobContext, accounts: Sequence[tuple[str, str]], owed: Sequence[Owed]) -> None:
        """Each account's job (its window and the windows earlier runs owe), and the insights
        units earlier runs owe for it on their own (their plan may not hold them any more)."""
        windows = _owed_windows(owed)
        for account_id, key in accounts:
            extra = windows.get(account_id, {})
            ctx.submit(AccountJob(ctx, account_id, key, (self.config.window, *extra.values()), owed=tuple(extra)))
        key_of = dict(accounts)
        for o in owed:
            account_key = key_of.get(o.account_id)
            if o.kind == "unit" and account_key is not None and o.owed_id not in ctx.skip_units:
                if isinstance(ctx.owed_units, set):
                    ctx.owed_units.add(o.owed_id)
                self.stats.inc(stat.UNITS_PLANNED)
                ctx.submit(InsightsJob(ctx, account_key, o.account_id, msgspec.json.decode(o.body, type=Unit),
                                       expires_at=o.expires_at))

    # -- discovery --------------------------------------------------------------------------

    def _discover(self, ctx: JobContext) -> None:
        """A discovery job per [[discover]] table whose token is there (the others fail at once)."""
        for i, table in enumerate(self.config.discover):
            key = self.keys.key_of(table.token_name)
            if not self.keys.in_shard(table.token_name):
                self.discovery_done(i, [], None)       # another shard's: settled empty, in its turn
            elif key is None:
                reason = self.keys.missing.get(table.token_name, "no access token")
                self.discovery_done(i, [], Decision(Action.FAIL_TOKEN, "no access token", message=reason))
            else:
                ctx.submit(DiscoverJob(ctx, key, i, table, self.discovery_done))

    def discovery_done(self, index: int, found: list[Found], decision: Decision | None) -> None:
        """Tables are settled in config order, so that an account two tokens reach is harvested
        with the first table's token whatever discovery answers first (a listed account keeps
        its own token); a table waits for the ones before it."""
        self._discoveries[index] = (found, decision)
        while self._released in self._discoveries:
            i = self._released
            self._settle(i, *self._discoveries.pop(i))
            self._released += 1

    def _settle(self, index: int, found: list[Found], decision: Decision | None) -> None:
        table = self.config.discover[index]
        name = table.token_name
        if decision is not None:
            label = f"discover[{index}] ({name})"
            self.stats.fail(Outcome.of(label, label, decision, f"discovery failed: {decision.reason}"))
            if self.state is not None:
                self.state.set_account(self.run_id, f"discover[{index}]", name, "failed", decision.reason)
        chosen: list[tuple[str, str]] = []
        key = next((k for k in self.keys.names if name in self.keys.names_of(k)), None)
        for f in found:
            if not table.wants(f.account_id, f.username):
                self.stats.inc(stat.DISCOVERED_EXCLUDED)
            elif f.account_id in self._claimed:
                self.stats.inc(stat.DISCOVERED_ELSEWHERE)
            elif key is not None:
                self._claimed[f.account_id] = name
                self._discovered[name].append(f.account_id)
                chosen.append((f.account_id, key))
                if self.state is not None:
                    self.state.set_account(self.run_id, f.account_id, name, "discovered")
        self.stats.inc(stat.DISCOVERED_ACCOUNTS, len(chosen))
        if chosen and self._ctx is not None:
            self._submit(self._ctx, chosen, self.owed([i for i, _ in chosen]))

    # -- failures ---------------------------------------------------------------------------

    def token_dead(self, key: str, decision: Decision) -> None:
        """The scheduler found a token unusable: each of its accounts fails, once."""
        name = self.keys.names.get(key, key)
        if self.state is not None:
            self.state.set_token(self.run_id, name, "dead", decision.reason)
        for env in self.keys.names_of(key):
            self._account_failed(env, decision, f"token {name} unusable: {decision.reason}")

    def collabs_not_harvested(self, ctx: JobContext, ledger: Ledger) -> None:
        """A collaboration post whose creator this run does not harvest: one failure naming why
        (the lister's token cannot read its insights: the API answers 100/33)."""
        for media_id, account_id, lister, creator in ctx.collabs_not_harvested():
            ledger.failed(Listed(account_id, f"media {media_id}"), Decision(Action.FAIL, (
                f"a collaboration post of @{creator} listed by @{lister}: only its creator's token reads "
                f"its insights (@{lister}'s gets 100/33), and @{creator}'s account is not harvested; "
                f"add it to [[accounts]] to harvest the post")))

    def _account_failed(self, env: str, decision: Decision, reason: str) -> None:
        for account_id in [a.id for a in self.config.accounts_of(env)] + self._discovered.get(env, []):
            self.stats.fail(Outcome.of(account_id, f"account {account_id}", decision, reason))
            if self.state is not None:
                self.state.set_account(self.run_id, account_id, env, "failed", decision.reason)


def _owed_windows(owed: Sequence[Owed]) -> dict[str, dict[str, Window]]:
    """Account id -> {owed id: window} of the account windows earlier runs owe."""
    windows: defaultdict[str, dict[str, Window]] = defaultdict(dict)
    for o in owed:
        if o.kind == "window":
            windows[o.account_id][o.owed_id] = msgspec.json.decode(o.body, type=Window)
    return windows
