"""Ingest: files and folders -> Documents (txt, md, html, pdf, docx, jsonl), text clean-up and dates."""
