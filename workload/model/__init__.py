"""The model client: authentication, secret masking, pacing, and the lab's traced call."""
