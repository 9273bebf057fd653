"""Providers: the code that talks to one kind of model (see ``allo.gateway.protocol``)."""
