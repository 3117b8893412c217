from claude_batch import classify


def model(dbt, session):
    # Sentiment of app.quality_reviews, judged against app.quality_gold (tests/integration/test_quality.py).
    dbt.config(materialized="incremental", unique_key="id", incremental_strategy="delete+insert")
    return classify(
        dbt, session,
        source=dbt.source("quality", "quality_reviews"),
        key="id",
        text="body",
        labels={
            "positive": "The reviewer likes it, praises or recommends it.",
            "negative": "The reviewer is unhappy: complaint, broken, refund.",
            "neutral": "No clear opinion.",
        },
        instructions="Classify the sentiment of each review.",
        options=(dbt.config.get("meta") or {}).get("claude"),
    )
