# A service that speaks sd_notify with the standard library only: READY=1,
# then WATCHDOG=1 at a third of WATCHDOG_USEC until the file $STALL_FILE
# exists, when it stops pinging (a hung main loop) but keeps running.
import os, socket, time

addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

def notify(msg):
    sock.sendto(msg.encode(), addr)

notify("READY=1")
every = int(os.environ["WATCHDOG_USEC"]) / 3e6
print(f"pinging every {every:.3f}s pid {os.getpid()}", flush=True)
while True:
    if not os.path.exists(os.environ["STALL_FILE"]):
        notify("WATCHDOG=1")
    time.sleep(every)
