"""Tracking accuracy against MOTChallenge ground truth, split by job.

- :mod:`spoton.evaluation.mot`: MOTChallenge text in and out (:class:`~spoton.evaluation.mot.MotBoxes`),
  and boxes from the pipeline's track tables.
- :mod:`spoton.evaluation.metrics`: the TrackEval adapter (HOTA, CLEAR MOT, identity) for one
  sequence or all cameras as one, box matching and map error.
- :mod:`spoton.evaluation.multi_camera`: a multi-camera run's tables scored per camera, with the
  tracker's ids, across cameras and on the floor.
- :mod:`spoton.evaluation.report`: the Markdown table and the ``tracking_evaluation`` rows.

Reading the lake or a ``spoton track`` output is the callers' job (``spoton.cli``,
``assets/evaluation.py``). Frames are 0-based everywhere in memory; MOTChallenge text is 1-based.
"""
