"""Stage 3, compile: from the model and its mapping to what each host builds
(:mod:`.configs` gives a :class:`~.hostconfig.HostConfig` per host, the logical
configuration that travels to a host's agent), and from a host's configuration to the
kernel objects it stands for (:mod:`.desired`, run where the kernel is: in the manager
for ``--local``, in the agent otherwise).  Pure functions."""
