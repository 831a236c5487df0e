"""The desk reads the trail: its tests use the recorded trails of the trail's own tests (a chain
of five events, seven events across the tree, a lead of the other region, raw SQL)."""

from ..audit.conftest import chain, dba_sql, south_lead, trail  # noqa: F401
