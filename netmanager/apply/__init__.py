"""The apply stage: one transaction across a topology's hosts, over a host transport.

:mod:`.commit` is the transaction (stage everywhere, commit with a revert timer, verify,
confirm; or roll every host back), written once.  It drives each host through a
:class:`~.transport.HostTransport`: :mod:`.local` runs the host's backend
(:mod:`netmanager.host`) in this process (``--local``), :mod:`.agent_transport` asks the
host's SNMP agent, which runs the same backend on the host.  :mod:`.topology` is what
the commands call: apply, plan and destroy a topology, the emulated infrastructure
under it, and the records of what was applied.
"""
