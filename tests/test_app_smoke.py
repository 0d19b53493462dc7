"""The demo launches and its API endpoints answer through gradio_client."""

import pytest


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    from gradio_client import Client

    import app

    demo = app.build_demo()
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


def test_zoo_and_device_endpoints(client):
    table = client.predict(api_name="/zoo_list")
    names = [row[0] for row in table["data"]]
    assert names == ["vgg16.tv_in1k", "vgg16.normalized"]
    assert client.predict(api_name="/device").startswith("Running on ")
