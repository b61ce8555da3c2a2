"""Marketplace jobs: created over HTTP, queued per user and marketplace, run step by step."""
