"""Streamlit-side helpers for the demo pages (session state, cached resources, cards, uploads).

Unlike the rest of ``recsys`` these import Streamlit; the logic they present lives elsewhere.
"""
