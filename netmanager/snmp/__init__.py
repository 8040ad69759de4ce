"""What the manager and the hosts' agents share: NETMANAGER-MIB (its text, the modules
compiled for pysnmp, its OIDs and the configuration tables' definitions read from it)
and the SNMP credentials file.  The agent (``snmp_agents``) and the manager's client
(``netmanager.agentctl.client``) both import it; it imports neither."""
