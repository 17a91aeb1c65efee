"""Talking to BFL: its API client, its reports (callbacks and polls), their verification, submission and polling."""
