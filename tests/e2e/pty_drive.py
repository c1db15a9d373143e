#!/usr/bin/env python3
"""Drives a command on a pseudo-terminal, as a person at a terminal would, from a script.

usage: pty_drive.py SCRIPT -- COMMAND...

SCRIPT is one step per line:
  send TEXT        writes TEXT (Python escapes: \\r, \\x03 for Ctrl-C, \\x10\\x11 for Ctrl-P Ctrl-Q)
  expect TEXT      waits (up to 20 s) until the output so far contains TEXT, else fails
  resize ROWS COLS sets the terminal's size (the command gets SIGWINCH)
  sleep SECONDS
  kill SIGNAL      sends SIGNAL to the command (e.g. KILL: a client that drops)
  absent TEXT      fails if the output since the last expect contains TEXT
Ends by waiting (up to 30 s) for the command and exits with its exit code; on a failure it
prints what the terminal showed and exits 200.
"""
import codecs
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time


def main():
    script_path, separator, *command = sys.argv[1:]
    assert separator == "--", __doc__
    pid, master = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    output = b""
    mark = 0  # where the last expect matched

    def read_for(seconds):
        nonlocal output
        deadline = time.time() + seconds
        while time.time() < deadline:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.time()))
            if not ready:
                return
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            output += chunk

    def failed(why):
        sys.stderr.write("pty_drive: %s\n--- the terminal showed:\n%s\n" % (why, output.decode(errors="replace")))
        os.kill(pid, signal.SIGKILL)
        sys.exit(200)

    for line in open(script_path):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        verb, _, argument = line.partition(" ")
        if verb == "send":
            os.write(master, codecs.decode(argument, "unicode_escape").encode())
        elif verb == "expect":
            wanted = codecs.decode(argument, "unicode_escape").encode()
            deadline = time.time() + 20
            while wanted not in output[mark:] and time.time() < deadline:
                read_for(0.1)
            if wanted not in output[mark:]:
                failed("never saw %r" % argument)
            mark = output.index(wanted, mark) + len(wanted)
        elif verb == "absent":
            read_for(0.3)
            if codecs.decode(argument, "unicode_escape").encode() in output[mark:]:
                failed("saw %r" % argument)
        elif verb == "resize":
            rows, cols = (int(x) for x in argument.split())
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        elif verb == "sleep":
            read_for(float(argument))
        elif verb == "kill":
            os.kill(pid, getattr(signal, "SIG" + argument))
        else:
            failed("unknown step %r" % line)
    deadline = time.time() + 30
    while time.time() < deadline:
        read_for(0.1)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            sys.stdout.write(output.decode(errors="replace"))
            sys.exit(os.waitstatus_to_exitcode(status) if os.waitstatus_to_exitcode(status) >= 0 else 128 - os.waitstatus_to_exitcode(status))
    failed("the command did not end")


if __name__ == "__main__":
    main()
