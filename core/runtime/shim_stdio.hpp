// The standard streams of an interactive command that bai-session-shim relays (the
// session's own command, or an exec): a pseudo-terminal, or pipes. The shim keeps the
// host ends; the child ends go to the command, which becomes a process group of its own
// (with a tty: a session whose controlling terminal it is).
#pragma once

#include "bai/result.hpp"
#include "stream_frames.hpp"

#include <optional>

namespace bai::core::shim {

// The child's descriptors 0, 1 and 2 (the same slave three times with a tty).
struct ChildEnds {
  int in = -1;
  int out = -1;
  int err = -1;
  bool tty = false;
};

// The shim's ends, non-blocking. A tty gives one master (input and output are two
// descriptors of it, so each can be polled and closed on its own); pipes give three.
// -1 where there is none: a closed stdin is /dev/null on the child's side.
struct HostEnds {
  int input = -1;
  int output = -1;
  int errors = -1;
  bool tty = false;
};

struct CommandStdio {
  HostEnds host;
  ChildEnds child;
};

// A pseudo-terminal of `size`, opened on the host's /dev/ptmx.
Result<CommandStdio> openTerminal(stream::TerminalSize size);
// Pipes for stdout and stderr, and for stdin when `openStdin` (else /dev/null).
Result<CommandStdio> openPipes(bool openStdin);

// Closes the child's ends in the shim once the child (or the init that forks it) has them.
void closeChildEnds(ChildEnds& child);
void closeHostEnds(HostEnds& host);

// In the forked child: with a tty, a new session whose controlling terminal is the
// slave; else a process group of its own. Then the ends as 0, 1 and 2, all else closed
// on exec. The message names the step that failed.
Result<void> adoptChildEnds(const ChildEnds& child);

// Whether the terminal's size could be set (the command then gets SIGWINCH).
bool resizeTerminal(int master, stream::TerminalSize size);
// The character that ends input on the terminal as typed (VEOF, usually ^D).
char endOfFileCharacter(int master);

}  // namespace bai::core::shim
