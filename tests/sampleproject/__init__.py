"""The sampleproject (the demo shop): in process, and under a real uvicorn."""
