"""Rasa NLU data, domain and the custom components shared with the app."""
