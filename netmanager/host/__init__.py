"""One host's side of a transaction: the candidate configuration (:mod:`.candidate`),
the contract every host implements (:mod:`.protocol`), the mapping between a host's
compiled configurations and its candidate (:mod:`.rows`), and the implementations:
the kernel engine's (:mod:`.kernelhost`) and an in-memory fake (:mod:`.memory`).

Below: :mod:`netmanager.kernel` and the compiled configurations.  Above: the apply engine
(:mod:`netmanager.apply`), which drives hosts in this process or through their agents,
and the agent (:mod:`snmp_agents`), which serves one host's backend over SNMP.
"""
