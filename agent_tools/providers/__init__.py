"""Provider adapters: fal.ai's queue API and WaveSpeed's v3 API behind one interface."""
