"""Atlas page (in progress)."""
import streamlit as st

st.title("Atlas")
st.info("This page is being built.")
