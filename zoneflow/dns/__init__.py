"""dnspython helpers: zone rendering, SOA queries, NOTIFY."""
