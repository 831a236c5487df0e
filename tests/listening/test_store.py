"""What a collection keeps (listening/services.posts_store): each post once per network, each
hit once per watch, the watch's own rules applied, and its figures counted exactly."""

from datetime import timedelta

import pytest

from listening import services
from listening.models import Hit, Measure, PublicPost, WatchAuthor

from .conftest import T0, public

pytestmark = pytest.mark.django_db


def _store(watch, posts, network="x", **kwargs):
    return services.posts_store(watch=watch, network=network, posts=posts, **kwargs)


def _minute(watch, at):
    return Measure.objects.get(watch=watch, resolution="minute", start=at.replace(second=0))


def test_a_page_stored_twice_keeps_and_counts_each_post_once(watch):
    posts = [public(at=T0 + timedelta(seconds=n)) for n in range(5)]

    first = _store(watch, posts)
    again = _store(watch, posts + [public(at=T0 + timedelta(seconds=30))])

    assert (first.posts, len(first.hits)) == (5, 5)
    assert (again.posts, len(again.hits)) == (1, 1)
    assert PublicPost.objects.count() == 6
    assert Hit.objects.filter(watch=watch).count() == 6
    assert _minute(watch, T0).volume == 6
    hour = Measure.objects.get(watch=watch, resolution="hour", start=T0)
    day = Measure.objects.get(watch=watch, resolution="day", start=T0.replace(hour=0))
    assert (hour.volume, day.volume) == (6, 6)


def test_the_watch_rules_decide_what_is_kept(org, north_lead):
    watch = services.watch_create(
        by=north_lead,
        team_id=org["north"].pk,
        values={
            "name": "Census",
            "terms": ["census"],
            "exclude": ["job"],
            "hashtags": ["Census2026"],
            "accounts": ["x:stats@gov.example", "bluesky:other.bsky.social"],
            "languages": ["en"],
        },
    )
    posts = [
        public("The census starts today", network_id="kept-term"),
        public("Big day #census2026", network_id="kept-tag"),
        public("Nothing to see", network_id="kept-author", author_handle="@Stats@gov.example"),
        public("Census job offers here", network_id="excluded"),
        public("Le recensement commence aujourd'hui, census", network_id="french", language="fr"),
        public("Unrelated chatter about lunch", network_id="unmatched"),
    ]

    stored = _store(watch, posts)

    kept = dict(Hit.objects.filter(watch=watch).values_list("post__network_id", "terms"))
    assert kept == {
        "kept-term": ["census"],
        "kept-tag": ["#Census2026"],
        "kept-author": ["@Stats@gov.example"],
    }
    assert len(stored.hits) == 3
    # Only what the watch keeps is stored (another watch's own search brings what it wants).
    assert PublicPost.objects.count() == 3


def test_a_post_read_again_brings_its_new_figures(watch):
    _store(watch, [public(network_id="p1", likes=1, reposts=0)])
    _store(watch, [public(network_id="p1", likes=40, reposts=12)])

    post = PublicPost.objects.get(network_id="p1")
    assert (post.likes, post.reposts) == (40, 12)
    assert Hit.objects.count() == 1


def test_figures_count_sentiment_languages_authors_and_new_authors(watch):
    _store(watch, [public("census is wonderful, great job", at=T0, author_handle="a")])
    _store(
        watch,
        [
            public(
                "census is awful, terrible mess", at=T0 + timedelta(minutes=1), author_handle="a"
            ),
            public("census form", at=T0 + timedelta(minutes=1, seconds=5), author_handle="b"),
            public(
                "census recensement",
                at=T0 + timedelta(minutes=1, seconds=9),
                author_handle="c",
                language="fr",
            ),
        ],
    )

    first, second = _minute(watch, T0), _minute(watch, T0 + timedelta(minutes=1))
    assert (first.volume, first.positive, first.authors, first.new_authors) == (1, 1, 1, 1)
    assert second.volume == 3
    assert second.negative == 1
    assert second.authors == 3
    assert second.new_authors == 2  # "a" was first seen the minute before
    assert sum(second.languages.values()) == 3
    hour = Measure.objects.get(watch=watch, resolution="hour", start=T0)
    assert (hour.volume, hour.authors, hour.new_authors) == (4, 3, 3)


def test_an_author_seen_earlier_than_first_thought_moves_the_new_author(watch):
    _store(watch, [public(at=T0 + timedelta(minutes=5), author_handle="late")])
    _store(watch, [public(at=T0, author_handle="late")])

    assert _minute(watch, T0).new_authors == 1
    assert _minute(watch, T0 + timedelta(minutes=5)).new_authors == 0
    assert WatchAuthor.objects.get(watch=watch).first_at == T0


def test_the_cursor_moves_with_the_page(watch):
    source = watch.sources.get()
    _store(watch, [public()], source=source, cursor="42")

    source.refresh_from_db()
    assert source.cursor == "42"


def test_a_page_that_fails_to_store_leaves_the_cursor(watch, monkeypatch):
    source = watch.sources.get()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("listening.measures.add", broken)
    with pytest.raises(RuntimeError):
        _store(watch, [public()], source=source, cursor="42")

    source.refresh_from_db()
    assert source.cursor == ""
    assert not Hit.objects.exists() and not PublicPost.objects.exists()


def test_false_claims_are_flagged_on_their_hits(watch, north_lead):
    claim = services.claim_create(
        by=north_lead,
        watch=watch,
        claim="The census texts ask for bank details",
        terms=["bank details", "pay a fine"],
    )
    stored = _store(
        watch,
        [
            public("census text wants my bank details?!", network_id="c1"),
            public("census text says pay a fine", network_id="c2"),
            public("census form done", network_id="ok"),
        ],
    )

    flagged = dict(Hit.objects.values_list("post__network_id", "claims"))
    assert flagged == {"c1": [claim.pk], "c2": [claim.pk], "ok": []}
    assert sorted(stored.claims) == [claim.pk]
    assert len(stored.claims[claim.pk]) == 2


def test_the_purge_keeps_hours_and_days_and_drops_posts_hits_and_minutes_past_retention(
    watch, time_machine
):
    from audit.models import AuditEvent

    now = T0 + timedelta(days=40)
    old = [public(at=T0 + timedelta(minutes=n)) for n in range(3)]
    recent = [public(at=now - timedelta(days=1))]
    _store(watch, old)
    _store(watch, recent)

    purged = services.watch_purge(watch=watch, now=now)

    assert purged == {"hits": 3, "posts": 3, "minutes": 3}
    assert list(Hit.objects.values_list("post__network_id", flat=True)) == [recent[0].network_id]
    assert Measure.objects.get(watch=watch, resolution="hour", start=T0).volume == 3
    assert Measure.objects.get(watch=watch, resolution="day", start=T0.replace(hour=0)).volume == 3
    event = AuditEvent.objects.get(action="listening.purged")
    assert event.data["hits"] == 3
    # Nothing left to purge: nothing done, nothing recorded.
    assert services.watch_purge(watch=watch, now=now) == {"hits": 0, "posts": 0, "minutes": 0}
    assert AuditEvent.objects.filter(action="listening.purged").count() == 1
    # A post older than the retention, read late, is not kept (its hour was counted and purged).
    time_machine.move_to(now, tick=False)
    assert _store(watch, [public(at=T0 + timedelta(minutes=9))]).hits == []


def test_top_posts_rank_by_reposts_then_likes_with_posts_without_figures_last(watch):
    from listening import measures

    _store(
        watch,
        [
            public(network_id="none", at=T0),  # a network that shows no figures
            public(network_id="liked", at=T0, reposts=3, likes=50),
            public(network_id="shared", at=T0, reposts=9, likes=1),
        ],
    )

    ranked = measures.top_posts(watch, T0, T0 + timedelta(hours=1))
    assert [hit.post.network_id for hit in ranked] == ["shared", "liked", "none"]


def _figures(watch):
    return {
        (m.resolution, m.start): (
            m.volume,
            m.positive,
            m.neutral,
            m.negative,
            m.not_scored,
            m.authors,
            m.new_authors,
            m.languages,
        )
        for m in Measure.objects.filter(watch=watch)
    }


def test_figures_added_page_by_page_are_those_counted_again_from_the_hits(watch):
    """Pages in any order, repeated, overlapping, with authors seen earlier than first thought
    and minutes, hours and days crossed: what `add` keeps is what counting every hit again
    gives."""
    import random

    from listening import measures

    rng = random.Random(18)
    texts = ["census is great", "census is awful", "census form", "le recensement census"]
    pool = [
        public(
            rng.choice(texts),
            network_id=f"p{n}",
            at=T0 + timedelta(minutes=rng.randint(0, 3 * 24 * 60)),
            author_handle=f"a{rng.randint(1, 25)}",
        )
        for n in range(400)
    ]
    for _ in range(40):
        _store(watch, rng.sample(pool, rng.randint(1, 30)))
    kept = _figures(watch)

    measures.recount(watch, list(Hit.objects.filter(watch=watch).values_list("at", flat=True)))

    assert kept == _figures(watch)
    assert (
        sum(v[0] for (resolution, _), v in kept.items() if resolution == "day")
        == Hit.objects.count()
    )
