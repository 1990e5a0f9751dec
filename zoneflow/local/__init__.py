"""Nameservers on this machine, each in a directory of its own on 127.0.0.1.

`zoneflow targets up` runs a few of them as a pool to try zoneflow with;
`make run` and the functional tests start theirs through the same classes.
"""
