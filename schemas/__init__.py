"""XSD schemas of netmanager's inputs, installed as the package netmanager.schemas."""
