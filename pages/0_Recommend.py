"""Recommend: a text, a picture or a sound (or liked items) -> ranked catalogue items, each explained."""

from __future__ import annotations

import time

import streamlit as st

from recsys.errors import InputError
from recsys.recommend.query import Query
from recsys.ui import onboarding, resources, state, uploads, url
from recsys.ui.page import start_page
from recsys.ui.results import render_results

engine, controls = start_page("Recommend", ":material/recommend:")
profile = state.get_profile(st.session_state)

onboarding.render_intro(engine)
if state.TEXT_KEY not in st.session_state:  # back from another page, or restored from the URL
    st.session_state[state.TEXT_KEY] = st.session_state.get(state.SAVED_PREFIX + state.TEXT_KEY, "")
text = st.text_input(
    "Describe what you are looking for",
    key=state.TEXT_KEY,
    placeholder="e.g. a red apple, a barking dog, something that flies",
)
st.session_state[state.SAVED_PREFIX + state.TEXT_KEY] = text
url.sync(engine)
col_image, col_audio = st.columns(2)
image_file = col_image.file_uploader(
    "Query image",
    type=list(uploads.IMAGE_TYPES),
    key="query-image",
    max_upload_size=uploads.limit_mb(uploads.image_limit()),
    help=f"PNG, JPEG or WebP, at most {uploads.human_size(uploads.image_limit())}",
)
audio_file = col_audio.file_uploader(
    "Query sound",
    type=list(uploads.AUDIO_TYPES),
    key="query-audio",
    max_upload_size=uploads.limit_mb(uploads.audio_limit()),
    help=f"WAV, OGG, FLAC or MP3, at most {uploads.human_size(uploads.audio_limit())}",
)
if st.button("Recommend", type="primary", key="recommend"):
    st.session_state["searched"] = True

image, audio, upload_errors = uploads.query_media(
    image_file, audio_file, resources.decode_image, resources.decode_audio
)
for message in upload_errors:
    st.error(message)
samples = {}  # modality -> catalogue item id, where a sample (not an upload) is in the query
for modality, uploaded in (("image", image_file), ("audio", audio_file)):
    if uploaded is not None:
        onboarding.clear_sample(modality)  # an upload replaces the sample
        continue
    value, item = onboarding.sample_media(engine, modality)
    if item is not None:
        samples[modality] = item.id
        image, audio = (value, audio) if modality == "image" else (image, value)
if image is not None or audio is not None:
    shown = st.columns(4)
    if image is not None:
        shown[0].image(image, caption="your image" if "image" not in samples else "sample picture", width="stretch")
    if audio is not None:
        shown[1].audio(audio.samples, sample_rate=audio.sample_rate)
        shown[1].caption(f"your sound ({audio.seconds:.1f} s)" if "audio" not in samples else "sample sound")
    for i, (modality, item_id) in enumerate(samples.items()):
        shown[2 + i].button(
            f"Remove the sample {'picture' if modality == 'image' else 'sound'}",
            key=f"clear-sample-{modality}",
            icon=":material/close:",
            on_click=onboarding.clear_sample,
            args=(modality,),
            help=engine.catalogue.item(item_id).title,
        )

query = Query(text=text or None, image=image, audio=audio, likes=tuple(profile.likes), dislikes=tuple(profile.dislikes))
if query.is_empty():
    if st.session_state.get("searched") or upload_errors:
        st.error("The query is empty: type some text, upload an image or a sound, or like an item.")
    else:
        st.info("Type a query or pick one above, upload an image or a sound, then press Enter or Recommend.")
    st.stop()

try:
    started = time.perf_counter()
    results = engine.recommend(
        query,
        weights=controls.weights,
        strategy=controls.strategy,
        k=controls.k,
        category=controls.category,
        similarity=controls.similarity,
    )
    elapsed = time.perf_counter() - started
except InputError as exc:
    st.error(str(exc)[:1].upper() + str(exc)[1:])
    st.stop()

state.set_last_search(
    st.session_state,
    state.LastSearch(
        query=query,
        weights=dict(controls.weights),
        strategy=controls.strategy,
        k=controls.k,
        category=controls.category,
        result_ids=tuple(r.item.id for r in results),
        scores=tuple(r.score for r in results),
    ),
)
render_results(results, query, controls, elapsed, samples, audio_note=engine.audio_note(query.audio))
