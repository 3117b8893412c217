from claude_batch import classify


def model(dbt, session):
    # Topics of app.quality_tickets (multi-label), judged against app.quality_topics_gold.
    dbt.config(materialized="incremental", unique_key="id", incremental_strategy="delete+insert")
    return classify(
        dbt, session,
        source=dbt.source("quality", "quality_tickets"),
        key="id",
        text="body",
        labels={"billing": "invoices, charges, refunds, payment", "shipping": "delivery, parcel, late, courier",
                "product": "broken, quality, defect, feature"},
        multi_label=True,
        instructions="Tag each support ticket with every topic it mentions.",
        options=(dbt.config.get("meta") or {}).get("claude"),
    )
