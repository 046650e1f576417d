"""Provider callbacks (fal ``fal_webhook``, WaveSpeed ``webhook``): verified, de-duplicated, and
only ever a nudge that wakes a job's tracker; polling stays the source of truth.
``verify`` checks signatures, ``receiver`` decides what a callback does, ``mount`` serves it."""
