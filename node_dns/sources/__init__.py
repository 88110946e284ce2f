"""Sources: Kubernetes objects in, small validated facts out. Nothing here knows DNS wire format."""
