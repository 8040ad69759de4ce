"""XSD schemas of netmanager's inputs, read through importlib.resources."""
