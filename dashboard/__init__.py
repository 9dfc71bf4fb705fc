"""MSQ Studio dashboard (Streamlit). Run: streamlit run dashboard/app.py"""
