"""Green manufacturing: energy and carbon footprint per work order and product, PACT export.

``energy`` turns cumulative meter readings into energy per machine, state and order (exactly
conserved); ``factors`` and ``settings`` hold emission factors and the carbon settings file;
``footprint`` computes Scope 1, Scope 2 (location and market) and upstream emissions; ``pact``
writes a PACT v3 ProductFootprint; ``report`` renders the HTML report; ``intensity`` gives the
dashboard its kWh and kgCO2e per unit, which ``carbon_panel`` keeps up to date for the app;
``pact_footprints`` holds the footprints the PACT API serves for one period.
"""
