"""The model gateway: every language model Allo calls goes through here.

It decides which declared model may receive a request's data, redacts personal data
before anything leaves for an external provider, retries and falls back, enforces team
budgets and writes an audit record of every call.
"""
