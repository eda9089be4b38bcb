"""Safety: the ``safety`` event stream read back (e-stops, intrusions, gas and temperature
limits), alerts to supervisors, the incident and near-miss register and days since the last
lost-time incident per site."""
