"""Tests of the WeChat and WeChat Pay gateways against the fake WeChat."""
