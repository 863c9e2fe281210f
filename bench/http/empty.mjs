// Intentionally empty: bench/http/startup.mjs measures what `--import` of any module costs.
