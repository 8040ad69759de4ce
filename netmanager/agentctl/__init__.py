"""The manager's side of the hosts' agents: the SNMP client that talks to one agent
(:mod:`.client`), and the agent processes of emulated hosts, started, found, checked and
stopped on this machine (:mod:`.processes`).  The agent itself is ``snmp_agents``."""
