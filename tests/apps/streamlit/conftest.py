"""The app's modules import each other by name, as `streamlit run` allows: put their folder on the path."""
import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parents[3] / "apps" / "streamlit"
sys.path.insert(0, str(APP_DIR))
