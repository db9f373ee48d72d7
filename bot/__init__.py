"""DockWarden: check running containers for newer image digests and update them on approval."""

__version__ = "0.1.0"
