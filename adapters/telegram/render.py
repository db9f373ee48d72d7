"""How DockWarden looks in Telegram: escaped HTML pages, inline buttons, the press line.

Pure functions (no network). HTML parse mode is used because only `<`, `>` and `&` need
escaping there; in Markdown the `_` and `.` of every image name would. Telegram also wants a
message of at most 4096 UTF-16 units and callback data of at most 64 bytes.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, User

from adapters import common
from bot.chat.catalogue import CommandSpec, usage
from bot.chat.messages import Action, Alert, Reply

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4096  # characters per message, Telegram's limit
CALLBACK_DATA_LIMIT = 64  # bytes of callback_data, Telegram's limit
CALLBACK_ANSWER_LIMIT = 200  # characters of an answerCallbackQuery text
MENU_DESCRIPTION_LIMIT = 256  # characters of a command's description in the menu


def escape(text: str) -> str:
    """Text made safe for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


def size(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def _pieces(raw: str, limit: int) -> list[str]:
    """One raw line escaped and cut into pieces of at most `limit` in size."""
    pieces: list[str] = []
    current = ""
    used = 0
    for char in raw:
        escaped = escape(char)
        if used + size(escaped) > limit:
            pieces.append(current)
            current, used = "", 0
        current += escaped
        used += size(escaped)
    pieces.append(current)
    return pieces


def _lines(html_line: str, raw: str, limit: int) -> list[str]:
    """A rendered line, or its raw text cut into plain pieces where it would not fit a page."""
    return [html_line] if size(html_line) <= limit else _pieces(raw, limit)


def paginate(lines: Sequence[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Self-contained HTML lines packed into pages of at most `limit` in size, in order.

    The markup counts too, so a page is never longer than Telegram allows once parsed.
    """
    pages: list[str] = []
    current: list[str] = []
    used = 0
    for line in lines:
        added = size(line) + (1 if current else 0)
        if current and used + added > limit:
            pages.append("\n".join(current))
            current, used = [], 0
            added = size(line)
        current.append(line)
        used += added
    if current:
        pages.append("\n".join(current))
    return [page for page in pages if page.strip()]


def _text_lines(text: str, limit: int) -> list[str]:
    return [piece for raw in text.split("\n") for piece in _lines(escape(raw), raw, limit)]


def render_alert(alert: Alert, limit: int = MESSAGE_LIMIT) -> list[str]:
    """An alert as HTML pages: bold title, its text, then each field as a bold-named line."""
    lines = _lines(f"<b>{escape(alert.title)}</b>", alert.title, limit)
    if alert.text:
        lines += _text_lines(alert.text, limit)
    for item in alert.fields:
        raw = f"{item.name}: {item.value}"
        lines += _lines(f"<b>{escape(item.name)}:</b> {escape(item.value)}", raw, limit)
    return paginate(lines, limit) or [escape(alert.kind.value)]


def render_reply(reply: Reply, limit: int = MESSAGE_LIMIT) -> list[str]:
    """A reply's text as HTML pages (long lists become several messages)."""
    return paginate(_text_lines(reply.text, limit), limit) or ["(no answer)"]


def callback_data(action: Action) -> str | None:
    """The button's payload "verb:target", or None when Telegram would refuse it as too long."""
    data = f"{action.verb}:{action.target}"
    return data if len(data.encode()) <= CALLBACK_DATA_LIMIT else None


def parse_callback_data(data: str | None) -> tuple[str, str] | None:
    """(verb, target) from a button payload, or None when it is not one of ours."""
    if not data or ":" not in data:
        return None
    verb, target = data.split(":", 1)
    return (verb, target) if verb and target else None


def keyboard(actions: Sequence[Action]) -> InlineKeyboardMarkup | None:
    """Actions as one row of inline buttons; None when there are none."""
    buttons = []
    for action in actions:
        data = callback_data(action)
        if data is None:
            log.warning("button %r dropped: its callback data exceeds 64 bytes", action.text)
            continue
        buttons.append(InlineKeyboardButton(action.text, callback_data=data))
    return InlineKeyboardMarkup([buttons]) if buttons else None


def press_line(who: str, label: str, outcome: str) -> str:
    """The HTML line added under an alert once someone pressed one of its buttons."""
    return escape(common.press_line(who, label, outcome))


def edited_text(original_html: str, line: str, limit: int = MESSAGE_LIMIT) -> str:
    """The alert's text with the press line appended, kept within one message."""
    text = f"{original_html}\n\n{line}"
    if size(text) <= limit:
        return text
    return line if size(line) <= limit else _pieces(html.unescape(line), limit)[0]


def menu_description(spec: CommandSpec) -> str:
    """A command's line in Telegram's command menu: its summary, and how to type its arguments."""
    text = f"{spec.summary} {usage(spec)}" if spec.arguments else spec.summary
    return text[:MENU_DESCRIPTION_LIMIT]


def display_name(user: User) -> str:
    """How a person is named in messages: @username, else their full name."""
    return f"@{user.username}" if user.username else user.full_name
