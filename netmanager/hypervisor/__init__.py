"""libvirt hosts: the domains that are a libvirt host's VMs (pure XML in ``domxml``, the
connection in ``keeper``, what a host's VMs need of their domains in ``domains``)."""
