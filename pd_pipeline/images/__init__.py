"""The card-image pipeline's domain: card state, planning, making and storing PNGs, write-back,
audits. Dagster-free: the wiring above calls it, and it calls the libraries below."""
