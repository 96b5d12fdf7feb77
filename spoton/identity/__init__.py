"""Identity: offline resolution of global identities (``resolver``, ``correlation_clustering``),
the offline track pass (``postprocess``), static ``phantoms``, analysts' ``overrides`` and person ``search``."""
