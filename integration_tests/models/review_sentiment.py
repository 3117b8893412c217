from claude_batch import classify


def model(dbt, session):
    dbt.config(materialized="incremental", unique_key="id", incremental_strategy="delete+insert")
    return classify(
        dbt, session,
        source=dbt.source("app", "reviews"),
        key="id",
        text="body",
        labels={
            "positive": "The reviewer likes it, praises or recommends it.",
            "negative": "The reviewer is unhappy: complaint, broken, refund.",
            "neutral": "No clear opinion.",
        },
        examples=[("I love it", "positive"), ("It broke", "negative")],
    )
