"""factory_boy factories for the shared cast of the tests."""

import factory
from django.utils.text import slugify

from accounts.models import Membership, Team, User
from networks.models import Channel, SocialAccount

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@agency.example")
    password = factory.django.Password(PASSWORD)


def make_team(name: str, parent: Team | None = None) -> Team:
    """Teams are tree nodes: they are added through treebeard, not a factory."""
    slug = slugify(name)
    if parent is None:
        return Team.objects.add_root(create_kwargs={"name": name, "slug": slug})
    return Team.objects.add_child(parent, create_kwargs={"name": name, "slug": slug})


def grant(user: User, team: Team, *roles: str) -> None:
    for role in roles:
        Membership.objects.get_or_create(user=user, team=team, role=role)


class SocialAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SocialAccount

    channel = Channel.MASTODON
    handle = factory.Sequence(lambda n: f"@account{n}")
    base_url = "https://social.example"
