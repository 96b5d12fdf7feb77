"""SpotOn live API: a FastAPI sidecar driving ``spoton.perception.processor.FrameProcessor`` on live sources."""
