"""Local servers that speak the chat platforms' protocols, for the end-to-end tests."""
