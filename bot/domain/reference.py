"""Image reference grammar and normalisation, as Docker's distribution/reference does it.

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component ( "/" path-component )*
    domain     := host [ ":" port ]        host: DNS name, IPv4, or [IPv6]
    path-comp  := alnum ( separator alnum )*    alnum [a-z0-9]+, separator [_.] | "__" | "-"+
    tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex

The first component is a registry only if it is `localhost`, holds a `.` or `:`, or has an
uppercase letter; otherwise the image lives on Docker Hub (`docker.io`, with `library/` added to
one-segment names).

Also the decisions about reference-like text made elsewhere: Docker Hub's other names, whether a
container's image text is an image id rather than a reference, and tag and digest splitting of
the text the engine stores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from bot.errors import InvalidReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DOCKER_HUB_CREDENTIALS_KEY = "https://index.docker.io/v1/"
_LEGACY_HUB = "index.docker.io"
# Every name Docker Hub goes by in config.json keys and on the command line. A reference keeps
# the host it names except `index.docker.io`, as distribution/reference does.
DOCKER_HUB_ALIASES = frozenset(
    {DOCKER_HUB, _LEGACY_HUB, DOCKER_HUB_API_HOST, "registry.hub.docker.com"}
)
DEFAULT_TAG = "latest"
# distribution/reference caps the path (registry excluded), counted after normalisation.
NAME_MAX_LENGTH = 255

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_ALGORITHM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[+._-][A-Za-z][A-Za-z0-9]*)*")
_HEX = re.compile(r"[a-fA-F0-9]{32,}")
# Docker would read `sha256:<hex>` as the Hub image `sha256` at a hex tag; it is an image ID.
_IMAGE_ID = re.compile(r"(?:sha256:)?[a-f0-9]{64}")
_SHORT_ID = re.compile(r"[a-f0-9]{12,64}")
# Docker accepts only registered algorithms, each with its exact length in lowercase hex.
_KNOWN_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class ImageRef:
    """A normalised image reference: where the image lives and which version of it."""

    registry: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """The host that serves the registry API (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def credentials_key(self) -> str:
        """The key Docker's config.json files this registry's credentials under."""
        return DOCKER_HUB_CREDENTIALS_KEY if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """Registry and repository, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def scope(self) -> str:
        """The token scope that allows pulling this repository."""
        return f"repository:{self.repository}:pull"

    @property
    def familiar(self) -> str:
        """The short form Docker shows (`nginx:latest`, `user/app:1`, `ghcr.io/o/r:1`)."""
        name = self.name
        first = self.repository.split("/", 1)[0]
        # Dropping docker.io is only safe when the path cannot be mistaken for a registry.
        if self.registry == DOCKER_HUB and not ("." in first or first == "localhost"):
            name = self.repository
            if name.startswith("library/") and name.count("/") == 1:
                name = name[len("library/") :]
        return name + self._suffix()

    def with_digest(self, digest: str) -> ImageRef:
        """The same image pinned to `digest` (the tag is kept)."""
        _check_digest(str(self), digest)
        return replace(self, digest=digest)

    def with_tag(self, tag: str) -> ImageRef:
        """The same repository at another tag (a digest is dropped: it was the old tag's)."""
        _check_tag(str(self), tag)
        return replace(self, tag=tag, digest=None)

    def _suffix(self) -> str:
        suffix = f":{self.tag}" if self.tag is not None else ""
        return suffix + (f"@{self.digest}" if self.digest is not None else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def registry_of(image: str) -> str:
    """The registry host of a normalised reference (`docker.io/library/nginx:1` -> docker.io)."""
    return image.split("/", 1)[0]


def is_docker_hub(host: str) -> bool:
    """Whether a registry host is one of Docker Hub's names."""
    return host.lower() in DOCKER_HUB_ALIASES


def is_image_id(text: str, image_id: str = "") -> bool:
    """Whether a container's image text names an image by id rather than by reference.

    `sha256:<hex>` and 64 hex digits always are; a shorter run of hex digits (12 or more) is
    when it begins the id of the image the container runs (`docker run 0123456789ab`).
    """
    # Docker refuses `sha256` as a repository name: `sha256:...` is always a (short) id.
    if text.startswith("sha256:") or _IMAGE_ID.fullmatch(text):
        return True
    return bool(_SHORT_ID.fullmatch(text)) and image_id.removeprefix("sha256:").startswith(text)


def split_digest(image: str) -> tuple[str, str | None]:
    """`name:tag@sha256:...` -> (`name:tag`, `sha256:...`); no digest -> (image, None)."""
    name, sep, digest = image.partition("@")
    return (name, digest) if sep else (image, None)


def without_tag(name: str) -> str:
    """`host:5000/repo:tag` -> `host:5000/repo`; a name without a tag is returned as it is."""
    return _split_tag_at(name)[0]


def parse_reference(text: str) -> ImageRef:
    """Parse and normalise an image reference; raises InvalidReference saying why."""
    if not isinstance(text, str):
        raise InvalidReference(repr(text), "not a string")
    if not text:
        raise InvalidReference(text, "empty")
    if any(ch.isspace() for ch in text):
        raise InvalidReference(text, "contains whitespace")
    if _IMAGE_ID.fullmatch(text):
        raise InvalidReference(text, "an image ID, not a reference")

    rest, at, digest = text.partition("@")
    if at:
        _check_digest(text, digest)
    rest, tag = _split_tag(text, rest)
    if tag is not None:
        _check_tag(text, tag)
    registry, repository = _split_registry(text, rest)
    _check_repository(text, repository)
    if len(repository) > NAME_MAX_LENGTH:
        raise InvalidReference(text, f"repository path is longer than {NAME_MAX_LENGTH} characters")
    if tag is None and not at:
        tag = DEFAULT_TAG
    return ImageRef(registry, repository, tag, digest if at else None)


def _split_tag_at(name: str) -> tuple[str, str | None]:
    # A colon after the last slash starts the tag; one before it belongs to a registry port.
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        return name[:colon], name[colon + 1 :]
    return name, None


def _split_tag(text: str, name: str) -> tuple[str, str | None]:
    name, tag = _split_tag_at(name)
    if tag == "":
        raise InvalidReference(text, "empty tag after ':'")
    return name, tag


def _split_registry(text: str, name: str) -> tuple[str, str]:
    first, slash, remainder = name.partition("/")
    is_domain = first == "localhost" or "." in first or ":" in first or first != first.lower()
    if not slash or not is_domain:
        registry, remainder = DOCKER_HUB, name
    else:
        if not _HOST.fullmatch(first):
            raise InvalidReference(text, f"invalid registry host {first!r}")
        registry = DOCKER_HUB if first == _LEGACY_HUB else first
    if registry == DOCKER_HUB and "/" not in remainder:
        remainder = f"library/{remainder}"
    return registry, remainder


def _check_repository(text: str, repository: str) -> None:
    if repository != repository.lower():
        raise InvalidReference(text, "repository name must be lowercase")
    for component in repository.split("/"):
        if not component:
            raise InvalidReference(text, "empty path component (doubled or trailing '/')")
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidReference(
                text,
                f"path component {component!r} must be lowercase letters and digits, "
                "joined by '.', '_', '__' or dashes",
            )


def _check_tag(text: str, tag: str) -> None:
    if not _TAG.fullmatch(tag):
        raise InvalidReference(
            text,
            f"tag {tag!r} must be 1-128 of letters, digits, '_', '.', '-' "
            "and not start with '.' or '-'",
        )


def _check_digest(text: str, digest: str) -> None:
    algorithm, colon, encoded = digest.partition(":")
    if not colon or not _ALGORITHM.fullmatch(algorithm) or not _HEX.fullmatch(encoded):
        length = _KNOWN_DIGEST_LENGTHS.get(algorithm)
        if colon and length is not None:
            raise InvalidReference(
                text, f"a {algorithm} digest must be {length} lowercase hex characters"
            )
        raise InvalidReference(text, f"digest {digest!r} is not algorithm:hex")
    length = _KNOWN_DIGEST_LENGTHS.get(algorithm)
    if length is None:
        raise InvalidReference(text, f"unsupported digest algorithm {algorithm!r}")
    if len(encoded) != length or encoded != encoded.lower():
        raise InvalidReference(
            text, f"a {algorithm} digest must be {length} lowercase hex characters"
        )
