"""Sink MX for the container test: one line per delivered recipient, synced before 250."""
import asyncio
import email
import email.policy
import os
import signal

from aiosmtpd.controller import Controller

LOG = os.environ.get("SINK_LOG", "/sink/received.log")
PORT = int(os.environ.get("SINK_PORT", "2599"))


class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.compat32)
        subject = " ".join(str(msg.get("Subject", "")).split())
        # The newest Received: header (the delivering MTA's own): shows the client address it saw.
        received = msg.get_all("Received") or [""]
        received = " ".join(str(received[0]).split())
        with open(LOG, "a", encoding="utf-8") as f:
            for rcpt in envelope.rcpt_tos:
                f.write(f"{subject}\t{rcpt}\t{envelope.mail_from}\t{received}\n")
            f.flush()
            os.fsync(f.fileno())
        print(f"received {subject!r} for {len(envelope.rcpt_tos)} recipient(s)")
        return "250 2.0.0 Ok: stored"


def main():
    open(LOG, "a").close()
    controller = Controller(Handler(), hostname="0.0.0.0", port=PORT)
    controller.start()
    print(f"sink listening on :{PORT}, writing {LOG}")
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
