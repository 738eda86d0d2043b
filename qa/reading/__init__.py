"""Reading: extractive readers (span reader, rules reader), span decoding and answer kinds."""
