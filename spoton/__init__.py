"""SpotOn core: per-frame operations shared by the batch assets, the live API and the review app.

This package imports no Dagster, FastAPI or Streamlit.
"""
__version__ = "0.1.0"
