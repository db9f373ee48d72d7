"""The one error hierarchy of DockWarden's core.

    DockWardenError
    ├── ConfigError                 settings that cannot work (bad cron, bad ids, ...)
    ├── BadTagRule                  a container's tag rule labels cannot work (bad regex, level)
    ├── InvalidReference            (also a ValueError) text that is no image reference
    ├── RegistryError               carries registry and repository
    │   ├── UnsupportedChallenge    only auth schemes we cannot speak; carries scheme and header
    │   ├── AuthFailed              credentials refused, or no token could be had
    │   ├── RegistryUnreachable     DNS, connect, TLS, timeouts
    │   │   └── ConnectFailed       nothing accepted the connection (may mean: try HTTPS)
    │   ├── RateLimited             429 after the bounded retries; carries retry_after
    │   ├── ManifestNotFound        the repository or tag does not exist
    │   └── BadResponse             an answer that breaks the protocol
    ├── EngineError                 the Docker engine refused or failed
    │   ├── EngineUnavailable       no engine answers on DOCKER_HOST
    │   ├── MalformedInspect        an inspect answer without a field the update needs
    │   └── ContainerNotFound
    ├── UpdateError                 an update could not be carried out
    │   ├── NotUpdatable            a Swarm task, --rm, pinned, stopped, ...: nothing was touched
    │   ├── UpdateInProgress        another update of the same container is running
    │   ├── StaleUpdate             the container no longer runs what the update was made for
    │   └── SelfUpdateRefused       the bot's own container cannot be recreated in place
    │       └── SelfUpdateHandedOver    ...so a helper container from the new image does it
    ├── UsageError                  a command's arguments cannot work; the message is the answer
    │   ├── DurationError           (also a ValueError) text that is no duration in bounds
    │   ├── UnknownHost             a `HOST/NAME` whose host is not watched
    │   └── AmbiguousTarget         a bare name more than one host has; carries the candidates
    └── StoreError                  the SQLite store is unusable

Errors carry their context as attributes; they become user text only at the edges (CLI, chat
adapters). Secrets never go into a message.
"""

from __future__ import annotations


class DockWardenError(Exception):
    """Base of every error DockWarden raises on purpose."""


class ConfigError(DockWardenError):
    """The configuration cannot work; the message says which setting and why."""


class BadTagRule(DockWardenError):
    """A `dockwarden.semver` or `dockwarden.tags.*` label cannot work; `label` says which."""

    kind = "bad_rule"  # the problem kind a check result and its alert carry

    def __init__(self, message: str, *, label: str) -> None:
        super().__init__(message)
        self.label = label


class InvalidReference(DockWardenError, ValueError):
    """The text is not a valid image reference."""

    def __init__(self, text: str, why: str) -> None:
        super().__init__(f"invalid image reference {text!r}: {why}")
        self.text = text
        self.why = why


class RegistryError(DockWardenError):
    """A registry could not answer what we asked; `kind` is the JSON contract's error kind."""

    kind = "bad_response"

    def __init__(self, message: str, *, registry: str, repository: str | None = None) -> None:
        super().__init__(message)
        self.registry = registry
        self.repository = repository

    @property
    def scheme(self) -> str | None:
        """The auth scheme involved, where one is (only for unsupported challenges)."""
        return None


class UnsupportedChallenge(RegistryError):
    """The registry offered only auth schemes DockWarden cannot use."""

    kind = "unsupported_challenge"

    def __init__(
        self, *, registry: str, repository: str | None, scheme: str, header: str
    ) -> None:
        super().__init__(
            f"{registry} asks for {scheme!r} authentication, which DockWarden cannot do; "
            "only Basic and Bearer are supported",
            registry=registry,
            repository=repository,
        )
        self._scheme = scheme
        self.header = header

    @property
    def scheme(self) -> str | None:
        return self._scheme


class AuthFailed(RegistryError):
    """The registry refused our credentials, or no token could be obtained."""

    kind = "auth_failed"


class RegistryUnreachable(RegistryError):
    """The registry could not be reached (DNS, connection, TLS, timeout)."""

    kind = "unreachable"


class ConnectFailed(RegistryUnreachable):
    """Nothing accepted the connection (refused, unknown host, connect timeout)."""


class RateLimited(RegistryError):
    """The registry kept answering 429."""

    kind = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        registry: str,
        repository: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, registry=registry, repository=repository)
        self.retry_after = retry_after


class ManifestNotFound(RegistryError):
    """The repository or tag does not exist in the registry."""

    kind = "not_found"


class BadResponse(RegistryError):
    """The registry answered something that breaks the protocol."""

    kind = "bad_response"


class EngineError(DockWardenError):
    """The Docker engine refused or failed an operation."""


class EngineUnavailable(EngineError):
    """No Docker engine answers where DOCKER_HOST (or the default socket) points."""


class HostNotAnswering(EngineUnavailable):
    """A container was named on one of several hosts, and that host's engine does not answer
    (the other hosts are checked as usual: no engine-wide alert)."""


class MalformedInspect(EngineError):
    """An inspect answer lacks a field the update needs, or has it in another shape."""

    def __init__(self, what: str, key: str, why: str) -> None:
        super().__init__(f"the engine's inspect of {what} is malformed: {key} {why}")
        self.what = what  # "container 1696d3929a4c", "an image", ...
        self.key = key  # "Config.Env", "NetworkSettings.Networks.web.Aliases", ...


class ContainerNotFound(EngineError):
    """No container has that name or id."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no container named {name!r}")
        self.name = name


class UpdateError(DockWardenError):
    """An update could not be carried out."""


class NotUpdatable(UpdateError):
    """The update cannot start (a Swarm task, run with --rm, pinned, ...); nothing was touched."""


class UpdateInProgress(UpdateError):
    """Another update of the same container is already running."""


class StaleUpdate(UpdateError):
    """The container no longer runs what an approved update was made for; nothing was done."""

    def __init__(self, container: str, *, image: str, digest: str | None, message: str) -> None:
        super().__init__(message)
        self.container = container
        self.image = image  # the normalised reference it runs now
        self.digest = digest  # the digest it runs now, when its image has one


class CanaryWaiting(UpdateError):
    """An update waits for its canary hosts to stay healthy on the digest (nothing was done)."""


class SelfUpdateRefused(UpdateError):
    """The bot's own container cannot be recreated from inside itself."""


class SelfUpdateHandedOver(SelfUpdateRefused):
    """The bot's own update was handed to a helper container; the bot that runs next reports."""

    def __init__(self, message: str, *, helper: str) -> None:
        super().__init__(message)
        self.helper = helper  # the helper container's name


class UsageError(DockWardenError):
    """A command was sent with arguments that cannot work; the message is the answer."""


class DurationError(UsageError, ValueError):
    """Text that is not a duration, or one outside the allowed bounds; the message says which."""


class UnknownHost(UsageError):
    """A `HOST/NAME` names a host DockWarden does not watch."""

    def __init__(self, host: str, known: tuple[str, ...]) -> None:
        super().__init__(f"no Docker host named {host!r}; the hosts are {', '.join(known)}")
        self.host = host
        self.known = known


class AmbiguousTarget(UsageError):
    """A bare name that more than one host has; `candidates` are their `HOST/NAME`s."""

    def __init__(self, name: str, candidates: tuple[str, ...]) -> None:
        super().__init__(f"{name!r} is on several hosts: {', '.join(candidates)}; say which")
        self.name = name
        self.candidates = candidates


class StoreError(DockWardenError):
    """The SQLite store is unusable."""
