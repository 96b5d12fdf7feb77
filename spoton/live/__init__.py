"""Live: sources with latest-frame semantics (``sources``), the WebSocket ``tick`` and online
global ids (``identity``)."""
