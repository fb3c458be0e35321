"""The ``curator`` command line: ``curator <noun> <verb>``, rich tables or ``--json``."""
