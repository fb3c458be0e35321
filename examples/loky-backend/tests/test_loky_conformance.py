from curator.testing import BackendConformance


class TestLoky(BackendConformance):
    backend = "loky"
