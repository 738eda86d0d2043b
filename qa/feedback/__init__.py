"""Staff verdicts on answers: the SQLite store, checked verdicts, export as evaluation data, `qa feedback`."""
