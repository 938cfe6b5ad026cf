"""The ``story_insights`` webhook receiver: Meta posts a story's final insights when it expires.

    signature  X-Hub-Signature-256, checked on the raw body before anything reads it
    payload    the delivery as msgspec Structs, and the insights records it states
    settings   [webhook] and [app] secret_env, and the secrets they name
    store      group commit to the sink (200 only once durable), dedupe, segments published
    app        the aiohttp.web application: verification, deliveries, /healthz
"""
