"""PostgreSQL for the job steps: connections (asyncpg), URLs, client tools, dump, load, fingerprint, locks."""
