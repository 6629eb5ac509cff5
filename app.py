"""The demo's entry point (`streamlit run app.py`): its four pages, named for what they do."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="multimodal recsys", layout="wide")
st.navigation(
    [
        st.Page("pages/0_Recommend.py", title="Recommend", icon=":material/recommend:", default=True),
        st.Page("pages/1_Explore.py", title="Explore", icon=":material/scatter_plot:", url_path="explore"),
        st.Page("pages/2_Why_this_item.py", title="Why this item?", icon=":material/psychology_alt:", url_path="why"),
        st.Page("pages/3_Fusion_lab.py", title="Fusion lab", icon=":material/science:", url_path="lab"),
    ]
).run()
