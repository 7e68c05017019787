"""A GREEN API simulator for tests and demos (notification queues, pull API, push delivery, faults)."""
