"""Stage 1, the inputs: real.xml and virtual.xml read safely (:mod:`.xmlsource`), checked
against their schemas and turned into the typed object graph (:mod:`.loader`,
:mod:`.model`, :mod:`.units`), then checked for meaning (:mod:`.validate`).  Pure: reads
the two files and nothing else."""
