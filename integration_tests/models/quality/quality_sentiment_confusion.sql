{{ config(materialized='table') }}
{{ claude_batch.claude_batch_confusion(ref('quality_sentiment'), source('quality', 'quality_gold'), key_columns=['id']) }}
