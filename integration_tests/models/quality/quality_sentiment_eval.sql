{{ config(materialized='table') }}
{{ claude_batch.claude_batch_evaluate(ref('quality_sentiment'), source('quality', 'quality_gold'), key_columns=['id'],
                                      labels=['positive', 'negative', 'neutral']) }}
