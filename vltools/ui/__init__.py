"""The web face: ``vltools ui``, a small server-rendered app over the registry (see `app`)."""
