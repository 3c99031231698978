"""Reusable Streamlit widgets; business logic stays in `embedlab/` and `storage/`."""
