"""SpotOn live API: a FastAPI sidecar driving ``spoton.processor.FrameProcessor`` on live sources."""
