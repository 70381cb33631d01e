"""Helpers shared by the Streamlit pages (kept out of the pages so they stay thin)."""
