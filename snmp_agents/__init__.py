"""netmanager's SNMP agent: one per host, a thin adapter over the host engine."""
