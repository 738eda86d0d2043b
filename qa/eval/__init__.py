"""Evaluation: question sets, the SQuAD metric, evaluation runs, their HTML report and the benchmark."""
