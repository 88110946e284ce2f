"""Sinks: what reads snapshots and counters — metrics, health endpoints."""
