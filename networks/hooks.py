"""What networks lets the apps above it do (cxhub.hooks): act when an account changes, and
answer what the channels ask about the posts they send. Publishing connects the handlers in
PublishingConfig.ready(); each runs inside the transaction of the networks code that fires it."""

from cxhub.hooks import Hook

# An account was connected again (its tokens renewed): the handler releases the targets held
# for it and answers how many it released. Keyword arguments: account, by.
account_reconnected = Hook("networks.account_reconnected")

# The channels ask publishing, which keeps the posts and their images, for what they send but do
# not hold. Each is a question answered by the one handler publishing connects.

# The stored images of a post, as the channel sends them: keyword arguments items (dispatch's
# image dicts: position, sha256, alt_text, ...) and channel; the answer is a list of
# networks.channels.media_files.MediaFile in position order (PermanentError for one not stored).
media_files = Hook("networks.media_files", required=True)

# A signed, short-lived public address of a stored image, for a network that fetches the image
# itself (Instagram): keyword arguments sha256 and channel; the answer is the URL.
public_image_url = Hook("networks.public_image_url", required=True)

# When dispatch first tried the target with this idempotency key, and how many tries it has
# started (the one under way among them), for a channel reconciling a lost answer: keyword
# argument idempotency_key; the answer is (first, count), (None, 0) for no such target.
target_tries = Hook("networks.target_tries")
