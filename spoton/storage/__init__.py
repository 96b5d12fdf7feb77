"""Storage: object stores (``store``), the Parquet ``lake`` and its table contracts (``schemas``),
the DuckDB ``catalog``."""
