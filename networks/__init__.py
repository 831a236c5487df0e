"""The networks: social accounts and their tokens, the connect flow, and one channel module per
network with its HTTP plumbing and request budgets (DESIGN §1: below publishing, above accounts)."""
