"""The embedded broker's topic ACL: amqtt asks it before every publish, subscribe and delivery.

Loaded by amqtt from :func:`microfab.connect.broker.broker_config` with the access file written by
``microfab broker acl`` (see :mod:`microfab.connect.broker_acl`). A user named in the access file
may publish and subscribe only what its entry lists; a ``service_users`` name (the
``microfab broker --username`` login) may use every topic; anyone else nothing. A refused
subscription is answered with the failure code 0x80; a refused publish is dropped by the broker
(MQTT 3.1.1 has no way to tell the publisher) and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from amqtt.contexts import Action, BaseContext  # type: ignore[import-untyped]
from amqtt.plugins.base import BaseTopicPlugin  # type: ignore[import-untyped]
from amqtt.session import Session  # type: ignore[import-untyped]

from microfab.connect.broker_acl import BrokerLogin, read_access_file

log = logging.getLogger(__name__)


class DeviceTopicAcl(BaseTopicPlugin):  # type: ignore[misc]
    """amqtt topic plugin enforcing the per-device ACL of an access file."""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        config = self.context.config
        self.logins: dict[str, BrokerLogin] = {
            entry.login.user: entry.login for entry in read_access_file(Path(config.access_file))
        }
        self.service_users = frozenset(config.service_users)

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        user = session.username if session is not None else None
        if not topic or user is None:
            return False
        if user in self.service_users:
            return True
        login = self.logins.get(user)
        if login is None:
            return False
        if action == Action.PUBLISH:
            allowed = login.may_publish(topic)
            if not allowed:
                log.warning("broker ACL: %s may not publish to %s; message dropped", user, topic)
            return allowed
        if action == Action.SUBSCRIBE:
            allowed = login.may_subscribe(topic)
            if not allowed:
                log.warning("broker ACL: %s may not subscribe to %s; refused", user, topic)
            return allowed
        return login.may_subscribe(topic)  # RECEIVE: a message delivered on a subscription

    @dataclass
    class Config:
        """The access file and the logins that may use every topic."""

        access_file: str = ""
        service_users: list[str] = field(default_factory=list)
