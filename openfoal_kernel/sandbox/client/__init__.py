"""The sandbox code that runs in the agent kernel process: the executor and its exec streams."""
