"""Docker contexts written the way `docker context create` stores them, for tests of hosts named
by context.

Under DOCKER_CONFIG: `contexts/meta/<sha256 of the name>/meta.json` holds the endpoint, and
`contexts/tls/<sha256 of the name>/docker/{ca,cert,key}.pem` the TLS material when there is some.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

TLS_FILES = ("ca.pem", "cert.pem", "key.pem")


def context_dir_name(name: str) -> str:
    """The directory a context's files live in (the CLI's digest of its name)."""
    return hashlib.sha256(name.encode()).hexdigest()


def write_context(config: Path, name: str, host: str, *, tls: Mapping[str, bytes] | None = None,
                  skip_tls_verify: bool = False, description: str = "") -> Path:
    """Store context `name` for the engine at `host` under the DOCKER_CONFIG `config`; -> its
    meta.json. `tls` maps ca.pem / cert.pem / key.pem to their contents."""
    digest = context_dir_name(name)
    meta = config / "contexts" / "meta" / digest / "meta.json"
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({
        "Name": name,
        "Metadata": {"Description": description},
        "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_tls_verify}},
    }))
    if tls:
        unknown = set(tls) - set(TLS_FILES)
        if unknown:
            raise ValueError(f"not a context TLS file: {', '.join(sorted(unknown))}")
        where = config / "contexts" / "tls" / digest / "docker"
        where.mkdir(parents=True, exist_ok=True)
        for file, data in tls.items():
            (where / file).write_bytes(data)
            (where / file).chmod(0o600)
    return meta
