"""The JSON Schema of an environment's stored form: the one definition of that document.

``storage`` validates every document against it before it builds the records (so a bad file
gets the schema's message with its path) and after it writes one; ``docs`` and other tools can
read it with ``python -m spoton.site.schema``.
"""
from __future__ import annotations

import json

import jsonschema

from spoton.site.model import NAME_PATTERN, SOURCE_KINDS, Y_AXES, EnvironmentConfigError

FORMAT_VERSION = 1

_NAME = {"type": "string", "pattern": NAME_PATTERN.pattern}
_POINT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
_SIZE = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2,
         "description": "[width, height] in pixels"}
_POLYGON = {"type": "array", "items": _POINT, "minItems": 3}

ENVIRONMENT_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://spoton.example/schemas/environment-v1.json",
    "title": "SpotOn environment",
    "description": "One site: cameras on one clock, their calibration, the floor plan and its zones.",
    "type": "object",
    "required": ["format_version", "name", "fps", "cameras", "floor_plan"],
    "additionalProperties": False,
    "properties": {
        "format_version": {"const": FORMAT_VERSION},
        "name": _NAME | {"description": "the environment's folder in the object store"},
        "description": {"type": "string"},
        "fps": {"type": "number", "exclusiveMinimum": 0, "description": "the environment clock's frame rate"},
        "cameras": {"type": "array", "items": {"$ref": "#/$defs/camera"},
                    "description": "empty while the site is being set up"},
        "segment_length_s": {"type": "number", "exclusiveMinimum": 0,
                             "description": "length of the sub-videos a video camera is cut into"},
        "floor_plan": {"$ref": "#/$defs/floor_plan"},
        "zones": {"type": "array", "items": {"$ref": "#/$defs/zone"}},
    },
    "$defs": {
        "camera": {
            "type": "object",
            "required": ["name", "fps", "resolution"],
            "additionalProperties": False,
            "properties": {
                "name": _NAME,
                "fps": {"type": "number", "exclusiveMinimum": 0},
                "resolution": _SIZE,
                "source": {"type": ["object", "null"], "required": ["kind", "uri"], "additionalProperties": False,
                           "properties": {"kind": {"enum": list(SOURCE_KINDS)}, "uri": {"type": "string", "minLength": 1}}},
                "calibration": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/calibration"}]},
                "tracked_region_m": {"oneOf": [{"type": "null"}, _POLYGON],
                                     "description": "floor polygon (metres) the camera tracks people in"},
                "start_offset_frames": {"type": "integer", "minimum": 0,
                                        "description": "camera frame i is environment frame i + this"},
                "time_offset_s": {"type": "number"},
                "enabled": {"type": "boolean", "description": "false: described, but not materialized or streamed"},
            },
        },
        "calibration": {
            "type": "object",
            "required": ["image_points", "map_points", "image_to_map", "reprojection_error_m", "inliers"],
            "additionalProperties": False,
            "properties": {
                "image_points": {"type": "array", "items": _POINT, "minItems": 4, "description": "pixels"},
                "map_points": {"type": "array", "items": _POINT, "minItems": 4, "description": "metres"},
                "image_to_map": {"type": "array", "minItems": 3, "maxItems": 3,
                                 "items": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
                                 "description": "the homography fitted to the pairs (pixels -> metres)"},
                "reprojection_error_m": {"type": "number", "minimum": 0},
                "inliers": {"type": "array", "items": {"type": "boolean"}},
                "vertical_vanishing_point": {**_POINT, "description": "pixels where the images of vertical lines "
                                                                     "meet: foot points on people's axes"},
            },
        },
        "floor_plan": {
            "type": "object",
            "required": ["size_px", "metres_per_pixel", "origin_m", "y_axis"],
            "additionalProperties": False,
            "properties": {
                "image_key": {"type": ["string", "null"], "description": "key under the environment's folder"},
                "size_px": _SIZE,
                "metres_per_pixel": {"type": "number", "exclusiveMinimum": 0},
                "origin_m": _POINT | {"description": "world point (metres) at the image's top-left corner"},
                "y_axis": {"enum": list(Y_AXES), "description": "'up': +Y toward the image top"},
            },
        },
        "zone": {
            "type": "object",
            "required": ["name", "polygon_m"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string", "minLength": 1}, "polygon_m": _POLYGON},
        },
    },
}

_VALIDATOR = jsonschema.Draft202012Validator(ENVIRONMENT_SCHEMA)


def validate_document(document: dict, where: str = "environment document") -> None:
    """Raise EnvironmentConfigError naming every place the document breaks the schema."""
    errors = sorted(_VALIDATOR.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"  {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors[:10]]
        raise EnvironmentConfigError(f"{where} does not match the environment schema (spoton.site.schema):\n"
                                     + "\n".join(lines))


if __name__ == "__main__":
    print(json.dumps(ENVIRONMENT_SCHEMA, indent=2))
