"""What comes back: replies, mentions and comments from the networks, their triage, and the
engagement of our posts (issue 17)."""
