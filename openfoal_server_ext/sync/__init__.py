"""Local-first sync: the user server pushes its outbox, the cloud instance takes it in."""
