"""Models: the offline model packages (files, tokenizer, precision), the lean BERT forward pass, the encoder."""
