"""What the inbox asks of the apps above it (cxhub.hooks): listening connects its handler in
ListeningConfig.ready()."""

from cxhub.hooks import Hook

# The watch terms that cover an account's team (listening's watches of that team or a team above
# it: their terms, and their hashtags with a #), matched against each item stored for the
# account. Keyword argument: team. Each handler returns a sequence of terms; no handler, none.
watch_terms = Hook("inbox.watch_terms")
