"""Opening a dashboard page under Streamlit's AppTest, the way the pages' tests do."""


def open_page(at, page: str, **query):
    """Run the app, set the URL's query parameters, switch to ``app_pages/<page>.py``; no exception allowed."""
    at.run()
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at
