"""Delivering alerts to Slack: rendering, the Slack adapter, the delivery loop, a local receiver."""
