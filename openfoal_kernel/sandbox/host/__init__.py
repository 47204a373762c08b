"""The sandbox code that runs in the server (gateway) process: containers, mounts, egress."""
