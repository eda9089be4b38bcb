"""The demo's runtime without the command line: simulator → embedded MQTT broker → ingest worker →
store, and the dashboard it starts beside them."""

from __future__ import annotations

from pathlib import Path

import httpx

from microfab.runtime.demo import MqttPipeline, start_dashboard
from microfab.sim.engine import DEFAULT_START, FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import open_store


def test_the_pipeline_carries_a_simulated_hour_through_the_embedded_broker(tmp_path: Path) -> None:
    scenario = load_scenario("food-line")
    warnings: list[str] = []
    with open_store(f"sqlite:///{tmp_path / 'demo.db'}") as store:
        store.apply_factory(scenario.factory, scenario.factory_source)
        pipeline = MqttPipeline(store, scenario.factory, None, warn=warnings.append).start()
        try:
            assert pipeline.embedded
            assert pipeline.display == f"mqtt://127.0.0.1:{pipeline.settings.port}"
            assert pipeline.settings.username == "microfab-demo"
            sim = FactorySimulation(scenario, pipeline.publisher, seed=4, start=DEFAULT_START)
            for _ in sim.paced(3600, None):
                pass
            assert pipeline.drain(patience_s=10.0), "not every published event arrived"
            path = pipeline.path(sim.published)
        finally:
            pipeline.stop()
        stored = list(store.events(by="seq"))
        stats = pipeline.worker.stats
    assert sim.published > 100
    assert path.published == path.ingested == sim.published
    assert path.waiting == 0 and path.dead_letters == 0
    assert (stats.stored, stats.duplicates, stats.dead_letters) == (sim.published, 0, 0)
    assert len(stored) == len({s.event.id for s in stored}) == sim.published
    machines = {ref.path for ref in scenario.factory.machines()}
    assert {s.event.machine for s in stored} <= machines
    assert warnings == []


def test_the_dashboard_starts_with_a_one_time_admin_login(tmp_path: Path) -> None:
    scenario = load_scenario("food-line")
    with open_store(f"sqlite:///{tmp_path / 'dash.db'}") as store:
        store.apply_factory(scenario.factory, scenario.factory_source)
        server, sign_in = start_dashboard(store, lambda: DEFAULT_START, actor="cli:test")
        try:
            answer = httpx.get(f"{server.url}healthz", timeout=10)
            login_page = httpx.get(f"{server.url}login", timeout=10)
        finally:
            server.stop()
        again_server, again = start_dashboard(store, lambda: DEFAULT_START, actor="cli:test")
        again_server.stop()
    assert answer.status_code == 200
    assert login_page.status_code == 200
    assert sign_in.startswith("sign in 登入: user admin, one-time password ")
    assert again == "sign in 登入 with your admin user ('microfab users list' shows the users)"
