"""The command line: ``netmanager`` (:mod:`.main`), one module per group of commands
(:mod:`.commands`), and what only the commands show (:mod:`.summary`, :mod:`.graph`,
:mod:`.watch`).  Text and JSON go through :mod:`netmanager.output`."""
