"""BFL credits: the daily budget, usage counters and the account's balance."""
