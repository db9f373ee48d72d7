"""Who may use which command, and what a refusal costs: answered, and logged once per window.

Commands that change state are for the allow-listed admins of the sender's platform; the
others for anyone in an alert chat (or an admin). A refused sender is answered, but only the
first refusal of each window is logged and recorded in the history (bot/chat/throttle.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.chat import replies
from bot.chat.catalogue import CommandSpec
from bot.chat.messages import Command, Reply, Sender
from bot.chat.replies import cut
from bot.chat.throttle import SenderLimiter, Verdict
from bot.config.settings import Settings
from bot.store.db import Store

log = logging.getLogger(__name__)

ARG_LIMIT = 64  # characters of one argument kept in the history (strangers choose them)
DETAIL_LIMIT = 200  # characters of a refused command kept in the history


@dataclass(frozen=True)
class Authorizer:
    """Who may read and who may change state, per platform."""

    telegram_admin_ids: frozenset[int] = frozenset()
    discord_admin_ids: frozenset[int] = frozenset()
    discord_admin_role_ids: frozenset[int] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> Authorizer:
        """The allow-lists of the settings."""
        return cls(
            telegram_admin_ids=frozenset(settings.telegram_admin_ids),
            discord_admin_ids=frozenset(settings.discord_admin_ids),
            discord_admin_role_ids=frozenset(settings.discord_admin_role_ids),
        )

    def is_admin(self, sender: Sender) -> bool:
        """True when `sender` may change state."""
        if sender.platform in ("console", "cli"):
            return True  # someone at the machine's own terminal
        if sender.platform == "telegram":
            return sender.user_id in self.telegram_admin_ids
        if sender.platform == "discord":
            return sender.user_id in self.discord_admin_ids or bool(
                self.discord_admin_role_ids.intersection(sender.role_ids)
            )
        return False

    def may_read(self, sender: Sender) -> bool:
        """True when `sender` may use the read-only commands."""
        return sender.in_alert_place or self.is_admin(sender)

    def allows(self, spec: CommandSpec, sender: Sender) -> bool:
        """True when `sender` may use the command."""
        return self.is_admin(sender) if spec.changes_state else self.may_read(sender)


def actor_of(sender: Sender) -> str:
    """How a sender is named in the history: `telegram:42 (alice)`."""
    return f"{sender.platform}:{sender.user_id} ({cut(sender.display, ARG_LIMIT)})"


class Refuser:
    """Answers the commands a sender may not use; records the first of each sender's window."""

    def __init__(self, store: Store, limiter: SenderLimiter | None = None) -> None:
        self.store = store
        self.limiter = limiter or SenderLimiter()

    def refuse(self, spec: CommandSpec, command: Command) -> Reply:
        """The refusal's answer (silent past a flood), logged and recorded once per window."""
        sender = command.sender
        text = replies.refusal(spec)
        verdict, left_out = self.limiter.admit((sender.platform, sender.user_id))
        if verdict is not Verdict.RECORD:
            # Within a sender's window only the first refusal is logged and stored.
            return Reply(text, ephemeral=True, refused=True, silent=verdict is Verdict.DROP)
        actor = actor_of(sender)
        target = cut(container_of(self.store, command.args[0]), ARG_LIMIT) if command.args else None
        detail = cut(" ".join(cut(arg, ARG_LIMIT) for arg in (f"/{spec.name}", *command.args)),
                     DETAIL_LIMIT)
        if left_out:
            detail += f" (+{left_out} more refused, not recorded)"
        log.warning("refused %s from %s%s", detail, actor,
                    "" if left_out else " (more from them this minute are not logged)")
        self.store.record("refused", "refused", container=target, actor=actor, detail=detail)
        return Reply(replies.recorded(text), ephemeral=True, refused=True)


def container_of(store: Store, word: str) -> str:
    """The container of the update with that id, else the word itself (a container's name)."""
    update = store.get_update(word)
    return update.container if update else word
