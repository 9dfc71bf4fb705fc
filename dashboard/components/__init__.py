"""Pure builders of the dashboard: store data -> DataFrames and plotly figures (no streamlit)."""
