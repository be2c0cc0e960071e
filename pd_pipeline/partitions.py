import dagster as dg

# One partition per cardset, keyed `cardset-012`; sensors and render_pending_job add new ones.
cardsets = dg.DynamicPartitionsDefinition(name="cardsets")
