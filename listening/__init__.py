"""Listening: public conversation about watched topics, measured over time, and early warning
when it surges, turns angry or repeats a known false claim."""
