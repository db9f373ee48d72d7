"""The core/adapter boundary: nothing under bot/ imports telegram or discord."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAT_LIBRARIES = ("telegram", "discord")
LOADED = (
    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
    f"{CHAT_LIBRARIES!r})))\n"
)


def bot_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts))
    return names


def imported_names(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Name, ast.Attribute))
            and (getattr(node.func, "id", None) or getattr(node.func, "attr", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def test_no_bot_source_names_a_chat_library_in_an_import() -> None:
    offenders = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for name in imported_names(ast.parse(path.read_text(), str(path))):
            if name.split(".")[0] in CHAT_LIBRARIES:
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_importing_every_bot_module_loads_no_chat_library() -> None:
    modules = bot_modules()
    assert "bot.entrypoints.bootstrap" in modules and "bot.chat.router" in modules
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n" + LOADED
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_console_adapter_loads_no_chat_library() -> None:
    script = "import json, sys, adapters.console\n" + LOADED
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def _adapters_built(env: dict[str, str]) -> dict[str, object]:
    script = (
        "import json, sys\n"
        "from bot.entrypoints.bootstrap import build_adapters, build_core\n"
        "from bot.config.settings import load_settings\n"
        "from bot.store.db import Store\n"
        "settings = load_settings()\n"
        "store = Store(':memory:')\n"
        "core = build_core(settings, store, None, None)\n"
        "names = [type(a).__name__ for a in build_adapters(settings, core)]\n"
        "chat = sorted({m.split('.')[0] for m in sys.modules} & {'telegram', 'discord'})\n"
        "print(json.dumps({'adapters': names, 'chat': chat}))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DISCORD_"))}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT / "tests", env={**clean, **env},
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_no_token_means_the_console_and_no_chat_library() -> None:
    assert _adapters_built({}) == {"adapters": ["ConsoleAdapter"], "chat": []}


def test_each_token_builds_its_adapter_by_module_path() -> None:
    built = _adapters_built({
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "DISCORD_BOT_TOKEN": "discord-token",
        "DISCORD_WEBHOOK_URL": "https://discord.example/api/webhooks/1/tok",
    })
    assert built["adapters"] == ["TelegramAdapter", "DiscordAdapter", "DiscordWebhookAdapter"]


# What `dockwarden check` never uses: the chat platforms and alert channels, the daemon's
# scheduler, HTTP server and metrics, the SQLite store, the update path, the chat boundary and
# commands, and httpx's command-line client (click, pygments).
NOT_ON_THE_CHECK_PATH = (
    "telegram", "discord", "apprise", "prometheus_client", "aiohttp.web", "sqlite3",
    "adapters", "bot.store", "bot.update", "bot.usecases", "bot.http", "bot.chat",
    "click", "pygments",
)
_CHECK_COMMAND = """
import json, sys
import bot.engines.docker  # the command's engine module, loaded as for a real engine
import bot.entrypoints.bootstrap as bootstrap
from bot.entrypoints.cli import main

class NothingRunning:
    '''An engine where no container runs: all a unit test cannot ask of Docker.'''
    def list_workloads(self, stopped=False): return []
    def info(self): return {}
    def close(self): pass

bootstrap.build_engines = lambda settings: {"local": NothingRunning()}
status = main(["check", "--json"])
print(json.dumps({"status": status, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def test_check_command_loads_none_of_what_a_check_does_not_use(tmp_path: Path) -> None:
    clean = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("DOCKWARDEN_", "TELEGRAM_", "DISCORD_", "DOCKER_"))
    }
    done = subprocess.run(
        [sys.executable, "-c", _CHECK_COMMAND], cwd=tmp_path, capture_output=True, text=True,
        env={**clean, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"] == []
    ran = json.loads(done.stderr.strip().splitlines()[-1])
    assert ran["status"] == 0
    loaded = set(ran["modules"])
    assert {"bot.check.checker", "bot.registry.client", "bot.engines.docker"} <= loaded
    assert sorted(
        m for m in loaded
        if any(m == heavy or m.startswith(heavy + ".") for heavy in NOT_ON_THE_CHECK_PATH)
    ) == []
