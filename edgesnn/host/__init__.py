"""The host side of the device link, and nothing else: the serial protocol, byte transports,
device launchers (QEMU, host pty), the Python device emulator, and the link that streams
samples to a device and accounts for every answer. It builds, trains and loads no model."""
