"""Provenance graph: sources -> dataset versions -> training runs -> models -> deployments.

Every edge is bound to the content digests of both ends, so ``verify`` can
re-hash each artifact on a path and name the first one that changed.
"""
