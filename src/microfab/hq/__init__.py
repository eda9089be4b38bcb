"""HQ over several sites: the group factory model (registry), the per-site and group roll-up, the FX rates."""
