"""The environment model of any site: cameras, their calibration, the floor plan and its zones.

``model`` holds the validated records, ``schema`` the JSON Schema of their stored form,
``storage`` the versioned save/load in the object store and ``legacy`` the reader of the
first stored form (``environment.json`` plus ``calibration/{camera}.json``).
"""
