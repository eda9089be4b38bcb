"""Quality and maintenance intelligence: SPC on stored data, anomaly detection, machine health.

``spc`` builds control charts of a stored characteristic; ``anomaly`` detects abnormal telemetry
with detectors trained on a healthy baseline; ``maintenance`` turns degradation trends into a
health index and a remaining-useful-life estimate; ``scoring`` measures detectors against the
simulator's labelled faults. The maths of the charts is in :mod:`microfab.model.spc`.
"""
