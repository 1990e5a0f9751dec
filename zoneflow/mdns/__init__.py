"""mdns: the mini-DNS nameservers transfer zones from."""
