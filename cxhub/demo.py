"""The demo organisation of `make run`: an agency with HQ, three regions and two centres each,
people in every role and social accounts on every network. Built through the services (so it is
audited like any other change) and idempotent: a second run finds everything and adds nothing."""

from django.db import transaction

from accounts.models import Role, Team, User
from accounts.services import membership_grant, team_create
from inbox.sandbox import sandbox_inbound
from listening import sandbox as listening_sandbox
from listening.models import Watch
from listening.services import claim_create, watch_create
from networks.models import Channel, SocialAccount
from networks.services import social_account_create, social_account_grant_drafting

DEMO_PASSWORD = "cxhub-demo-2026"
# Replies, mentions and comments each demo account has heard when the demo is made.
DEMO_INBOUND_ITEMS = 8
# The demo's watch (listening/sandbox.py): a day of steady talk behind it, and a known false
# claim; `manage.py sandbox_surge --watch ID` sends it a surge of a made-up scam.
DEMO_WATCH = {
    "name": "Launch day",
    "terms": ["launch", "rocket", "viewing pass*"],
    "hashtags": ["LaunchDay"],
    "exclude": ["product launch"],
    "languages": ["en"],
}
DEMO_CLAIM = (
    "Texts say launch viewing passes must be paid for, or a fine paid, with bank details.",
    ["bank details", "pay a fine"],
)

# (slug, name, parent slug)
TEAMS = [
    ("hq", "Agency HQ", None),
    ("national-desk", "National Desk", "hq"),
    ("north", "Northern Region", "hq"),
    ("north-launch", "Northern Launch Centre", "north"),
    ("north-science", "Northern Science Centre", "north"),
    ("south", "Southern Region", "hq"),
    ("south-launch", "Southern Launch Centre", "south"),
    ("south-science", "Southern Science Centre", "south"),
    ("coast", "Coastal Region", "hq"),
    ("coast-tracking", "Coastal Tracking Station", "coast"),
    ("coast-visitors", "Coastal Visitor Centre", "coast"),
]

# (username, display name, team slug, roles, staff)
PEOPLE = [
    ("admin", "Ada Admin", "hq", [Role.ADMIN], True),
    ("lead", "Lena Lead", "hq", [Role.LEAD], False),
    ("approver.hq", "Hugo HQ-Approver", "hq", [Role.APPROVER], False),
    ("desk", "Dana Desk", "national-desk", [Role.DRAFTER], False),
    ("drafter.north", "Nina North", "north", [Role.DRAFTER], False),
    ("approver.north", "Noah North", "north", [Role.APPROVER], False),
    ("drafter.north-launch", "Nils Launch", "north-launch", [Role.DRAFTER], False),
    ("drafter.south", "Sara South", "south", [Role.DRAFTER], False),
    ("approver.south", "Sam South", "south", [Role.APPROVER], False),
    ("lead.south", "Sofia South-Lead", "south", [Role.LEAD], False),
    ("drafter.coast", "Cora Coast", "coast", [Role.DRAFTER], False),
    ("approver.coast", "Cole Coast", "coast", [Role.APPROVER], False),
    ("admin.coast", "Cyrus Coast-Admin", "coast", [Role.ADMIN], False),
    ("drafter.coast-visitors", "Vera Visitors", "coast-visitors", [Role.DRAFTER], False),
]

_HOSTS = {
    Channel.MASTODON: "https://mastodon.example",
    Channel.BLUESKY: "https://bsky.social",
    Channel.X: "https://api.x.com",
    Channel.FACEBOOK: "https://graph.facebook.com",
    Channel.INSTAGRAM: "https://graph.facebook.com",
    Channel.LINKEDIN: "https://api.linkedin.com",
    Channel.WEBHOOK: "https://www.agency.example/hooks/cxhub",
    Channel.SANDBOX: "",
}

# (team slug, channel, handle)
ACCOUNTS = [
    ("hq", Channel.MASTODON, "@agency"),
    ("hq", Channel.BLUESKY, "agency.bsky.social"),
    ("hq", Channel.X, "@Agency"),
    ("hq", Channel.FACEBOOK, "Agency"),
    ("hq", Channel.INSTAGRAM, "@agency"),
    ("hq", Channel.LINKEDIN, "agency"),
    ("hq", Channel.WEBHOOK, "agency.example news"),
    ("north", Channel.MASTODON, "@agency_north"),
    ("north", Channel.X, "@AgencyNorth"),
    ("north", Channel.FACEBOOK, "Agency North"),
    ("north-launch", Channel.BLUESKY, "northlaunch.bsky.social"),
    ("north-launch", Channel.X, "@NorthLaunch"),
    ("north-science", Channel.MASTODON, "@north_science"),
    ("south", Channel.MASTODON, "@agency_south"),
    ("south", Channel.INSTAGRAM, "@agency_south"),
    ("south", Channel.LINKEDIN, "agency-south"),
    ("south-launch", Channel.X, "@SouthLaunch"),
    ("south-science", Channel.BLUESKY, "southscience.bsky.social"),
    ("coast", Channel.FACEBOOK, "Agency Coast"),
    ("coast", Channel.BLUESKY, "agencycoast.bsky.social"),
    ("coast-tracking", Channel.MASTODON, "@tracking"),
    ("coast-visitors", Channel.INSTAGRAM, "@coast_visitors"),
    ("coast-visitors", Channel.SANDBOX, "visitor centre (sandbox)"),
]

# The national desk may also draft for one regional account (a per-object grant).
DESK_GRANTS = [("desk", Channel.MASTODON, "@agency_north")]


@transaction.atomic
def seed_demo() -> dict:
    teams: dict[str, Team] = {team.slug: team for team in Team.objects.all()}
    for slug, name, parent in TEAMS:
        if slug not in teams:
            # Re-read the parent: adding children changes the tree's bookkeeping on it.
            parent_team = Team.objects.get(slug=parent) if parent else None
            teams[slug] = team_create(name=name, parent=parent_team, slug=slug, by=None)

    people = []
    for username, display, team_slug, roles, staff in PEOPLE:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, display_name=display, is_staff=staff)
            user.email = f"{username}@agency.example"
            user.set_password(DEMO_PASSWORD)
            user.save()
        for role in roles:
            membership_grant(user=user, team=teams[team_slug], role=role, by=None)
        people.append(
            {
                "username": username,
                "password": DEMO_PASSWORD,
                "display_name": display,
                "team": team_slug,
                "team_name": teams[team_slug].name,
                "roles": [str(role) for role in roles],
                "role": str(roles[0]),
            }
        )

    accounts = []
    for team_slug, channel, handle in ACCOUNTS:
        base_url = _HOSTS[channel]
        account = SocialAccount.objects.filter(
            channel=channel, base_url=base_url, handle=handle
        ).first()
        if account is None:
            account = social_account_create(
                team=teams[team_slug],
                channel=channel,
                handle=handle,
                base_url=base_url,
                access_token=f"demo-access-{channel}-{handle}",
                # Demo accounts publish to the sandbox feed: a new user sees posts go out.
                sandbox=True,
                by=None,
            )
        accounts.append(
            {
                "id": account.pk,
                "channel": channel.value,
                "handle": handle,
                "team": team_slug,
                "base_url": base_url,
            }
        )

    # Each demo account has heard back already (inbox/sandbox.py): a new user finds an inbox.
    quiet = SocialAccount.objects.filter(
        pk__in=[account["id"] for account in accounts], sandbox=True, inbound_items__isnull=True
    ).select_related("team")
    for account in quiet:
        sandbox_inbound(account=account, count=DEMO_INBOUND_ITEMS, seed=account.pk)

    watch = Watch.objects.filter(name=DEMO_WATCH["name"], sandbox=True).first()
    if watch is None:
        lead = User.objects.get(username="lead")
        watch = watch_create(
            by=lead, team_id=teams["hq"].pk, values={**DEMO_WATCH, "sandbox": True}
        )
        claim_create(by=lead, watch=watch, claim=DEMO_CLAIM[0], terms=DEMO_CLAIM[1])
        listening_sandbox.seed_history(watch)

    for username, channel, handle in DESK_GRANTS:
        user = User.objects.get(username=username)
        account = SocialAccount.objects.get(channel=channel, handle=handle)
        if not user.has_perm("networks.draft_socialaccount", account):
            social_account_grant_drafting(account=account, user=user, by=None)

    return {
        "teams": [
            {
                "id": teams[slug].pk,
                "slug": slug,
                "name": name,
                "parent": parent,
            }
            for slug, name, parent in TEAMS
        ],
        "people": people,
        "social_accounts": accounts,
        "watches": [{"id": watch.pk, "name": watch.name, "team": "hq", "sandbox": True}],
    }
