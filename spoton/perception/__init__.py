"""Perception: one configuration (``config``), the per-frame ``processor`` of N cameras, per-camera
``tracking`` and tracklet ``appearance``; the models themselves are in :mod:`spoton.models`."""
