"""Retrieval page (in progress)."""
import streamlit as st

st.title("Retrieval")
st.info("This page is being built.")
