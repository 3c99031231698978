"""Sessions page (in progress)."""
import streamlit as st

st.title("Sessions")
st.info("This page is being built.")
