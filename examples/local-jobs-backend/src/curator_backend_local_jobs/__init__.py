"""A worked batch backend: curator's batch-job machinery with local processes as the jobs."""
