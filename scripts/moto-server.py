"""moto's S3 on a free loopback port, for the tests (tests/common/moto.rs).

Prints the port on the first line of stdout, then serves until stdin closes: the test
process holds the other end, so the server ends with it however the tests end.
"""

import os
import sys

from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
# The test reads one line: anything printed later would meet a closed pipe and fail the
# request that printed it.
devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, sys.stdout.fileno())
sys.stdin.read()
server.stop()
