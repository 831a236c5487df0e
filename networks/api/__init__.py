"""The social accounts API (DRF views, serializers, routes)."""
