#include "runtime/shim_stdio.hpp"

#include "runtime/atomic_file.hpp"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

namespace bai::core::shim {
namespace {

Failure<Error> failed(const std::string& what, int errnum) {
  return fail(ErrorCode::Internal, describeErrno(what, errnum));
}

void closeIfOpen(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

bool setNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

}  // namespace

Result<CommandStdio> openTerminal(stream::TerminalSize size) {
  CommandStdio stdio;
  stdio.host.tty = stdio.child.tty = true;
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return failed("opening a pseudo-terminal", errno);
  char name[128];
  if (::grantpt(master) != 0 || ::unlockpt(master) != 0 || ::ptsname_r(master, name, sizeof name) != 0) {
    int error = errno;
    ::close(master);
    return failed("unlocking a pseudo-terminal", error);
  }
  int slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  int secondMaster = slave >= 0 ? ::fcntl(master, F_DUPFD_CLOEXEC, 0) : -1;
  if (slave < 0 || secondMaster < 0 || !setNonBlocking(master) || !resizeTerminal(master, size)) {
    int error = errno;
    for (int fd : {master, slave, secondMaster}) {
      if (fd >= 0) ::close(fd);
    }
    return failed(std::string("setting up pseudo-terminal ") + name, error);
  }
  stdio.host.output = master;
  stdio.host.input = secondMaster;
  stdio.child = ChildEnds{slave, slave, slave, true};
  return stdio;
}

Result<CommandStdio> openPipes(bool openStdin) {
  CommandStdio stdio;
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  int in[2] = {-1, -1};
  bool opened = ::pipe2(out, O_CLOEXEC) == 0 && ::pipe2(err, O_CLOEXEC) == 0;
  if (opened && openStdin) opened = ::pipe2(in, O_CLOEXEC) == 0;
  if (opened && !openStdin) opened = (in[0] = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;
  if (opened) opened = setNonBlocking(out[0]) && setNonBlocking(err[0]) && (in[1] < 0 || setNonBlocking(in[1]));
  if (!opened) {
    int error = errno;
    for (int fd : {out[0], out[1], err[0], err[1], in[0], in[1]}) {
      if (fd >= 0) ::close(fd);
    }
    return failed("opening the command's pipes", error);
  }
  stdio.host = HostEnds{in[1], out[0], err[0], false};
  stdio.child = ChildEnds{in[0], out[1], err[1], false};
  return stdio;
}

void closeChildEnds(ChildEnds& child) {
  if (child.tty) {
    closeIfOpen(child.in);
    child.out = child.err = -1;
    return;
  }
  for (int* fd : {&child.in, &child.out, &child.err}) closeIfOpen(*fd);
}

void closeHostEnds(HostEnds& host) {
  for (int* fd : {&host.input, &host.output, &host.errors}) closeIfOpen(*fd);
}

Result<void> adoptChildEnds(const ChildEnds& child) {
  if (child.tty) {
    if (::setsid() < 0) return failed("setsid", errno);
    if (::ioctl(child.in, TIOCSCTTY, 0) != 0) return failed("making the terminal the controlling one", errno);
  } else if (::setpgid(0, 0) != 0) {
    return failed("setpgid", errno);
  }
  // dup2 clears close-on-exec on the copies; the originals close on exec.
  if (::dup2(child.in, STDIN_FILENO) < 0 || ::dup2(child.out, STDOUT_FILENO) < 0 ||
      ::dup2(child.err, STDERR_FILENO) < 0) {
    return failed("redirecting the standard streams", errno);
  }
  return {};
}

bool resizeTerminal(int master, stream::TerminalSize size) {
  winsize window{};
  window.ws_row = size.rows;
  window.ws_col = size.cols;
  return ::ioctl(master, TIOCSWINSZ, &window) == 0;
}

char endOfFileCharacter(int master) {
  termios settings{};
  if (::tcgetattr(master, &settings) != 0) return '\x04';
  return static_cast<char>(settings.c_cc[VEOF]);
}

}  // namespace bai::core::shim
