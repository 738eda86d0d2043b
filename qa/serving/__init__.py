"""Serving: Ray Serve replicas, micro-batching of concurrent questions, admission limits, the allocator."""
