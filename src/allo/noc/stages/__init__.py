"""The stages of the NOC pipeline, one small class per module (see ``allo.noc.pipeline``)."""
