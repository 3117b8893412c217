from claude_batch.calibrate import calibrate


def model(dbt, session):
    # Agreement of quality_sentiment's configuration with one row per request, on a seeded sample
    # (its settings are read from the state tables its own runs wrote).
    dbt.config(materialized="table")
    dbt.ref("quality_sentiment")
    return calibrate(dbt, session, classifier="quality_sentiment", source=dbt.source("quality", "quality_reviews"),
                     sample_size=100, wait_seconds=30, poll_seconds=0.05)
