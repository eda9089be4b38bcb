"""HQ's checks of where an uplinked message comes from (``microfab ingest --hq``).

At HQ every site's events arrive on one broker. Two checks keep one site from writing as another:

- the broker's ACL gives each site's uplink a login that may publish only
  ``microfab/v1/<its site>/#`` (see docs/hq.md), so a site cannot use another's topics;
- the uplink names its site in the MQTT 5 user property ``microfab-site``; ingest refuses a
  message whose topic names another site (``site_mismatch``: a misconfigured or misbehaving
  uplink, flagged in the ingest's status line and kept as a dead letter), and a message of a site
  HQ has not registered (``unknown_site``: its factory model was never applied at HQ).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from microfab.connect.topics import TOPIC_ROOT
from microfab.connect.uplink import SITE_PROPERTY

_ROOT_LEVELS = len(TOPIC_ROOT.split("/"))
UPLINK_LEVEL = "uplink"
"""``microfab/v1/{site}/uplink``: the uplink's status (retained), which HQ's ingest records."""


def uplink_status_topic(site: str) -> str:
    return f"{TOPIC_ROOT}/{site}/{UPLINK_LEVEL}"


def status_topic_site(topic: str) -> str | None:
    """The site of an uplink status topic, or None for any other topic."""
    levels = topic.split("/")
    if len(levels) == _ROOT_LEVELS + 2 and levels[-1] == UPLINK_LEVEL:
        return topic_site(topic)
    return None


def topic_site(topic: str) -> str | None:
    """The site level of ``microfab/v1/{site}/…``, or None for another topic."""
    levels = topic.split("/")
    if "/".join(levels[:_ROOT_LEVELS]) != TOPIC_ROOT or len(levels) <= _ROOT_LEVELS:
        return None
    return levels[_ROOT_LEVELS]


def claimed_site(user_properties: Sequence[tuple[str, str]] | None) -> str | None:
    """The ``microfab-site`` user property of a message, if it has one."""
    for name, value in user_properties or ():
        if name == SITE_PROPERTY:
            return value
    return None


def site_refusal(topic: str, claimed: str | None, known_sites: Collection[str]) -> str | None:
    """Why HQ refuses this message (a dead-letter reason), or None when it may be decoded."""
    site = topic_site(topic)
    if site is None:
        return None  # not under the root: decoding dead-letters it as bad_topic
    if claimed is not None and claimed != site:
        return (
            f"site_mismatch: the uplink of site '{claimed[:40]}' sent an event of site "
            f"'{site[:40]}'; refused"
        )
    if site not in known_sites:
        return (
            f"unknown_site: site '{site[:40]}' is not registered at HQ "
            "(microfab hq register SITE_FACTORY.yaml)"
        )
    return None
