"""The host side of edgesnn: the serial protocol, byte transports, device launchers (QEMU,
host pty) and the evaluation runner that streams samples to a device."""
