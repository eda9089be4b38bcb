"""Shop-floor adapters: MQTT (UNS topics, Sparkplug B), OPC UA, Modbus TCP, spool, dead letters.

Adapters only map protocol data to microfab events and hand them to a publisher; they never write
to the store themselves.
"""
