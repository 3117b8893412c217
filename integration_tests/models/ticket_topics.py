from claude_batch import classify


def model(dbt, session):
    # dbt-duckdb does not quote unique_key columns: quote a name with a space yourself.
    dbt.config(materialized="incremental", unique_key=["region", '"ticket no"'], incremental_strategy="delete+insert")
    return classify(
        dbt, session,
        source=dbt.source("app", "tickets"),
        key=["region", "ticket no"],
        text_template="Subject: {subject}\n{body}",
        labels={"billing": "invoices, charges, refunds, payment", "shipping": "delivery, parcel, late, courier",
                "product": "broken, quality, defect, feature"},
        multi_label=True,
        instructions="Tag each support ticket with every topic it mentions.",
    )
