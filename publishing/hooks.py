"""What publishing lets the apps above it do when a post changes (cxhub.hooks): approvals
connects its handlers in ApprovalsConfig.ready(). Each fires inside the publishing service's
transaction."""

from cxhub.hooks import Hook

# post_submit: a draft went to review; the handler opens its approval request.
# Keyword arguments: post, by.
post_submitted = Hook("publishing.post_submitted", required=True)

# A post's approvals no longer hold (its content or, under the team's policy, its time changed;
# or it was cancelled): the handler supersedes its open requests. Keyword arguments: post, by,
# reason ("content changed", "time changed", "cancelled").
approvals_void = Hook("publishing.approvals_void", required=True)

# A question: does moving this team's approved post to another time need a new approval? Any
# handler answering True says yes; no handler, no. Keyword argument: team.
schedule_change_needs_approval = Hook("publishing.schedule_change_needs_approval")

# The post page (publishing/views/post_page.py) asks the apps above for their sections of it.
# Keyword arguments: user, post, given (what the caller of the page passed for the sections,
# e.g. the break-glass form approvals draws again with its errors). Each handler returns a
# PageSection, or None to show nothing.
post_page_sections = Hook("publishing.post_page_sections")

# Replies (posts with is_reply) went out: the inbox closes the items they answer. Fired inside
# the transaction that stores the outcomes. Keyword argument: targets (the published reply
# targets, each with social_account_id, in_reply_to, post_id and published_at).
replies_published = Hook("publishing.replies_published")

# What a post stands in, shown wherever it is read before it goes out: on the post page and on
# its review page (approvals). The inbox shows the item a reply answers. Keyword arguments: user,
# post. Each handler returns a publishing.views.post_page.PageSection, or None.
post_context_sections = Hook("publishing.post_context_sections")
