{{ config(materialized='table') }}
{{ claude_batch.claude_batch_evaluate(ref('quality_topics'), source('quality', 'quality_topics_gold'), key_columns=['id'],
                                      multi_label=true) }}
