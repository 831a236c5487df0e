"""Tests of the networks app: social accounts, the connect flow and the channels."""
