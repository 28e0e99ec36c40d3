"""The web page (Streamlit): ``thinkchain ui`` runs :mod:`thinkchain.ui.page`."""
