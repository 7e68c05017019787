"""Reusable fault-injection parts for tests: a RESP-aware Redis proxy, crash points, recording routers."""
