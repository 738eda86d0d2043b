"""The chat's library side: the ChatService the Gradio page (app.py) wires to, and HTML rendering."""
