"""Bounds on every count a user sets (settings, recipes, endpoint specs).

A typo such as `samples: 99999999999999999999999` or `-k 99999999999999999999999` is refused in one
line before any work, instead of planning more requests than any run could ever send (which
looked like a silent hang). The bounds are far above any real run.
"""
MAX_SAMPLES = 1_000  # samples, keep, questions per seed: per question, mistake or seed
MAX_TOKENS = 1_000_000  # a reply's token limit
MAX_COUNT = 1_000_000_000  # problems, mistakes per question, optimizer steps, rpm, tpm, n-gram sizes
MAX_CONCURRENCY = 10_000  # requests in flight
MAX_RETRIES = 100
MAX_SECONDS = 86_400.0  # one request's timeout
