"""Operations over infrastructure: the registry and its backends."""
