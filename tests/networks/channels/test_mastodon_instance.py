"""A Mastodon server's own limits, read from its GET /api/v2/instance answer."""

from networks.channels import get_channel, limits_from_mastodon_instance
from networks.channels.mastodon import DEFAULT_LIMITS, MastodonChannel

# Trimmed from a real answer (a server that raised its limits), shaped as
# docs.joinmastodon.org/entities/Instance/ documents it.
INSTANCE = {
    "domain": "social.example.gov",
    "title": "Example Government Social",
    "version": "4.3.2",
    "configuration": {
        "urls": {"streaming": "wss://social.example.gov"},
        "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
        "statuses": {
            "max_characters": 5000,
            "max_media_attachments": 8,
            "characters_reserved_per_url": 23,
        },
        "media_attachments": {
            "supported_mime_types": [
                "image/jpeg",
                "image/png",
                "image/gif",
                "image/heic",
                "image/heif",
                "image/webp",
                "image/avif",
                "video/webm",
                "video/mp4",
            ],
            "description_limit": 1500,
            "image_size_limit": 10485760,
            "image_matrix_limit": 16777216,
            "video_size_limit": 41943040,
            "video_frame_rate_limit": 60,
            "video_matrix_limit": 2304000,
        },
        "polls": {"max_options": 4, "max_characters_per_option": 50},
        "translation": {"enabled": False},
    },
    "registrations": {"enabled": False, "approval_required": False, "message": None},
}


def test_it_reads_the_limits_a_server_announces():
    limits = limits_from_mastodon_instance(INSTANCE)
    assert limits.max_text == 5000
    assert limits.max_media == 8
    assert limits.max_image_bytes == 10_485_760
    assert limits.max_image_pixels == 16_777_216
    assert limits.max_alt_text == 1500
    assert limits.media_formats == {"JPEG", "PNG", "GIF", "WEBP"}
    assert limits.text_unit == DEFAULT_LIMITS.text_unit


def test_the_servers_limits_change_what_validate_accepts():
    mastodon = get_channel("mastodon")
    limits = MastodonChannel.limits_from_instance(INSTANCE)
    assert mastodon.validate("a" * 4000, [], limits=limits) == []
    [problem] = mastodon.validate("a" * 5001, [], limits=limits)
    assert problem.message == "The text is 5,001 characters; Mastodon allows 5,000 (1 too many)."


def test_an_empty_answer_keeps_the_defaults():
    assert limits_from_mastodon_instance({}) == DEFAULT_LIMITS
    assert DEFAULT_LIMITS.max_text == 500
    assert DEFAULT_LIMITS.max_media == 4
    assert DEFAULT_LIMITS.max_image_bytes == 16 * 1024 * 1024
    assert DEFAULT_LIMITS.max_image_pixels == 33_177_600
    assert DEFAULT_LIMITS.max_alt_text == 1500


def test_missing_keys_keep_their_defaults_one_by_one():
    limits = limits_from_mastodon_instance(
        {"configuration": {"statuses": {"max_characters": 1000}}}
    )
    assert limits.max_text == 1000
    assert limits.max_media == DEFAULT_LIMITS.max_media
    assert limits.max_image_bytes == DEFAULT_LIMITS.max_image_bytes
    assert limits.max_image_pixels == DEFAULT_LIMITS.max_image_pixels
    assert limits.media_formats == DEFAULT_LIMITS.media_formats


def test_malformed_values_keep_the_defaults():
    limits = limits_from_mastodon_instance(
        {
            "configuration": {
                "statuses": {"max_characters": "5000", "max_media_attachments": -1},
                "media_attachments": {"image_size_limit": None, "image_matrix_limit": True},
            }
        }
    )
    assert limits == DEFAULT_LIMITS


def test_a_non_dict_configuration_keeps_the_defaults():
    assert limits_from_mastodon_instance({"configuration": []}) == DEFAULT_LIMITS


def test_a_fork_announcing_max_toot_chars_is_understood():
    assert limits_from_mastodon_instance({"max_toot_chars": 2000}).max_text == 2000
