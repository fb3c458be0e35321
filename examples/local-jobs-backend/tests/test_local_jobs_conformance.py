from curator.testing import BackendConformance


class TestLocalJobs(BackendConformance):
    backend = "local-jobs"
