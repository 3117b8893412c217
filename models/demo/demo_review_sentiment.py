from claude_batch import classify


def model(dbt, session):
    dbt.config(materialized="incremental", unique_key="review_id", incremental_strategy="delete+insert")
    return classify(
        dbt, session,
        source=dbt.ref("demo_reviews"),
        key="review_id",
        text="review_text",
        labels={
            "positive": "The reviewer is pleased: praises, recommends or loves the product.",
            "negative": "The reviewer is unhappy: complains, it broke, wants a refund.",
            "neutral": "No clear opinion, a mixed verdict, or a question.",
        },
        instructions="Classify the sentiment of each product review.",
        examples=[("Works perfectly, I love it.", "positive"), ("Broke after two days.", "negative")],
    )
