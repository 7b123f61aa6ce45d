"""What the job steps count to prove a migration or a restore: row counts and write counters."""
