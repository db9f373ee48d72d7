"""End-to-end tests: the real chat libraries against the local stand-ins."""
