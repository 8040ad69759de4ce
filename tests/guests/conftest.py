"""Fixtures of the guest tests: net-snmp's tool environment, shared with the agent tests."""

from tests.snmp.conftest import tool_env

__all__ = ["tool_env"]
