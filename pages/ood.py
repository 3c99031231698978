"""Ood page (in progress)."""
import streamlit as st

st.title("Ood")
st.info("This page is being built.")
