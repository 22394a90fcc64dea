"""Serving layer (DynamoDB): predictions loaded into a key-value table for low-latency lookups."""
