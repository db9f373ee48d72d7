"""Real services the integration and e2e tests stand on: a Docker engine and registries.

Everything here starts real processes (dockerd, docker-registry, a token server) on loopback,
writes their logs to files under WORK_ROOT and stops them again; tests/conftest.py wires them
into pytest fixtures. `python -m tests.services prepare` installs what is missing.

Environment:
  DOCKER_HOST                      the engine to use; where none answers, dockerd is started
  DOCKWARDEN_TEST_FORCE_ENGINE=1   start a private dockerd even when one answers (own socket,
                                   data root and bridge): pins the path CI takes
  DOCKWARDEN_TEST_TRIXIE_MIRROR    the Debian mirror Docker 26.1 and containerd are fetched
                                   from for the containerd-store engine (newer_engine.py;
                                   default http://deb.debian.org/debian); its dockerd log is
                                   engine-c8d/dockerd.log, Podman's session-<pid>/podman/;
                                   Compose v2 (compose.py) comes from there too
  DOCKWARDEN_TEST_ROOT             state and logs (default /var/tmp/dockwarden-test): the
                                   dockerd log is engine/dockerd.log, registries' logs are
                                   session-<pid>/registries/<name>/registry.log
                                   and the second engine's (second_engine.py, mirroring
                                   Docker Hub through the anonymous registry)
                                   engine-second/dockerd.log
"""

from __future__ import annotations

import os
from pathlib import Path

# Where every service keeps its state and logs; outside the work tree so clones stay clean.
WORK_ROOT = Path(os.environ.get("DOCKWARDEN_TEST_ROOT", "/var/tmp/dockwarden-test"))

# The label every engine resource made by the test services carries; its value is the pid of
# the pytest process that made it, so a later session can tell dead sessions' leftovers.
SESSION_LABEL = "dockwarden.test.session"
