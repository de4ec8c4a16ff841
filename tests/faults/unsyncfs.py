"""A FUSE file system that loses what was never synced (issue 15).

It passes every call through to a backing directory, but remembers, per
file, what each write since the file's last fsync replaced: the bytes of
every 4 KiB page it touched and the size the file had when last synced.
When the daemon is told to stop (SIGTERM, after the process writing to
it was killed), it unmounts and puts every file back as it was at its
last fsync: pages rewritten since are restored and the file is cut back
to its synced size. That is what a power cut does to data that sat in
the page cache (or a disk's volatile write cache) when the writer
believed it was stored, so anything a program acknowledges without a
completed fsync shows up as lost.

Directory operations (create, rename, unlink) take effect at once, as
on a journaled file system that has committed them; a new file comes
back empty unless its data was synced. `--fsync-lies GLOB` keeps the
undo records of the files whose path (from the mount's root) matches
through fsync as well, so that the suite can show its checker catches a
store that trusts a lying disk.

    python3 tests/faults/unsyncfs.py BACKING MOUNTPOINT [--fsync-lies GLOB]

On exit it prints one JSON line: the files put back, the bytes written
since their last fsync that were lost (in all and per file), and the
bytes whose hole punching was undone.
Needs libfuse 2 and fusepy (`pip install fusepy`)."""

import argparse
import ctypes
import errno
import fnmatch
import json
import os
import sys
import threading

import fuse

PAGE = 4096
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def _with_fallocate():
    """fusepy's table of operations stops before libfuse 2.9's `fallocate`
    (after `poll`, `write_buf`, `read_buf` and `flock`); without it the
    kernel is told "not supported" and a store cannot punch holes here.
    This extends the table to that slot."""
    if hasattr(fuse.FUSE, "fallocate"):
        return

    class Operations(ctypes.Structure):
        _fields_ = fuse.fuse_operations._fields_ + [
            ("poll", ctypes.c_void_p),
            ("write_buf", ctypes.c_void_p),
            ("read_buf", ctypes.c_void_p),
            ("flock", ctypes.c_void_p),
            ("fallocate", ctypes.CFUNCTYPE(
                ctypes.c_int, ctypes.c_char_p, ctypes.c_int, fuse.c_off_t, fuse.c_off_t,
                ctypes.POINTER(fuse.fuse_file_info))),
        ]

    def fallocate(self, path, mode, offset, length, fip):
        return self.operations("fallocate", path.decode(self.encoding), mode, offset, length,
                               fip.contents)

    fuse.fuse_operations = Operations
    fuse.FUSE.fallocate = fallocate


class Undo:
    """What one file looked like at its last fsync: its size then and the
    old bytes of every page changed since (only pages below that size
    matter: anything beyond is cut off anyway)."""

    def __init__(self, fd, synced_size):
        self.fd = fd  # our own descriptor: follows renames, closed when settled
        self.synced_size = synced_size
        self.pages = {}
        # Pages some write changed; the others were only punched (a lost
        # punch brings dead bytes back, which is no data lost).
        self.written = set()

    def remember(self, start, end, punch=False):
        """Keeps the current bytes of every page in [start, end) not kept yet."""
        end = min(end, self.synced_size)
        if start >= end:
            return
        for page in range(start // PAGE, (end + PAGE - 1) // PAGE):
            if page not in self.pages:
                self.pages[page] = os.pread(self.fd, PAGE, page * PAGE)
            if not punch:
                self.written.add(page)

    def restore(self):
        """Puts the file back; returns (bytes written since the last fsync
        that are lost, bytes whose punching is undone)."""
        lost = max(0, os.fstat(self.fd).st_size - self.synced_size)
        for page, old in self.pages.items():
            os.pwrite(self.fd, old, page * PAGE)
        lost += len(self.written) * PAGE
        unpunched = (len(self.pages) - len(self.written)) * PAGE
        os.ftruncate(self.fd, self.synced_size)
        os.fsync(self.fd)
        os.close(self.fd)
        return lost, unpunched


class UnsyncFS(fuse.Operations):
    def __init__(self, backing, fsync_lies=None):
        self.backing = os.path.realpath(backing)
        self.fsync_lies = fsync_lies
        # One call at a time: the undo records and the writes they guard
        # must agree, and a test load needs no more.
        self.mutex = threading.Lock()
        self.undo = {}  # (st_dev, st_ino) -> Undo
        self.fsyncs = 0

    def _real(self, path):
        return self.backing + path

    # -- what a power cut loses ---------------------------------------

    def _undo_of(self, fd):
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        undo = self.undo.get(key)
        if undo is None:
            undo = self.undo[key] = Undo(os.dup(fd), st.st_size)
        return undo

    def _settle(self, fd):
        st = os.fstat(fd)
        undo = self.undo.pop((st.st_dev, st.st_ino), None)
        if undo is not None:
            os.close(undo.fd)

    def _forget_if_gone(self, real):
        """A file whose last name went away needs no undo."""
        try:
            st = os.lstat(real)
        except FileNotFoundError:
            return
        if st.st_nlink <= 1:
            undo = self.undo.pop((st.st_dev, st.st_ino), None)
            if undo is not None:
                os.close(undo.fd)

    def power_cut(self):
        """Every file back to its last fsync; returns the bytes lost per
        file (its path under the mount)."""
        lost = {}
        unpunched = 0
        with self.mutex:
            for undo in self.undo.values():
                path = os.readlink(f"/proc/self/fd/{undo.fd}")
                written, punched = undo.restore()
                lost[os.path.relpath(path, self.backing)] = written
                unpunched += punched
            self.undo.clear()
        return lost, unpunched

    # -- files ----------------------------------------------------------

    @staticmethod
    def _backing_flags(flags):
        """The backing file is read and written with ordinary calls (the
        writer's O_DIRECT and O_APPEND apply on the FUSE side), and
        readable whenever it is writable: the undo records read the bytes
        a write replaces."""
        flags &= ~(os.O_DIRECT | os.O_APPEND)
        if flags & os.O_ACCMODE == os.O_WRONLY:
            flags = (flags & ~os.O_ACCMODE) | os.O_RDWR
        return flags

    def open(self, path, fi):
        flags = self._backing_flags(fi.flags)
        with self.mutex:
            fd = os.open(self._real(path), flags)
            if fi.flags & os.O_TRUNC:
                self._undo_of(fd)  # the truncation itself is unsynced
        fi.fh = fd
        return 0

    def create(self, path, mode, fi):
        flags = self._backing_flags(fi.flags) | os.O_CREAT
        with self.mutex:
            fd = os.open(self._real(path), flags, mode)
            self._undo_of(fd)
        fi.fh = fd
        return 0

    def read(self, path, size, offset, fi):
        return os.pread(fi.fh, size, offset)

    def write(self, path, data, offset, fi):
        with self.mutex:
            self._undo_of(fi.fh).remember(offset, offset + len(data))
            return os.pwrite(fi.fh, data, offset)

    def truncate(self, path, length, fi=None):
        with self.mutex:
            fd = fi.fh if fi is not None else os.open(self._real(path), os.O_RDWR)
            try:
                size = os.fstat(fd).st_size
                self._undo_of(fd).remember(min(length, size), size)
                os.ftruncate(fd, length)
            finally:
                if fi is None:
                    os.close(fd)

    def fallocate(self, path, mode, offset, length, fi):
        with self.mutex:
            undo = self._undo_of(fi.fh)
            if mode & FALLOC_FL_PUNCH_HOLE:
                undo.remember(offset, offset + length, punch=True)
            elif mode & ~FALLOC_FL_KEEP_SIZE:
                undo.remember(offset, offset + length)  # zeroing, collapsing: a write
            # else: preallocation changes no bytes (only, maybe, the size)
            if _libc.fallocate(fi.fh, mode, offset, length) != 0:
                raise fuse.FuseOSError(ctypes.get_errno())
        return 0

    def fsync(self, path, datasync, fi):
        with self.mutex:
            self.fsyncs += 1
            if datasync:
                os.fdatasync(fi.fh)
            else:
                os.fsync(fi.fh)
            if not (self.fsync_lies and fnmatch.fnmatch(path, self.fsync_lies)):
                self._settle(fi.fh)
        return 0

    def flush(self, path, fi):
        return 0

    def release(self, path, fi):
        os.close(fi.fh)
        return 0

    # -- names and attributes ------------------------------------------

    def getattr(self, path, fi=None):
        st = os.fstat(fi.fh) if fi is not None and fi.fh else os.lstat(self._real(path))
        return {k: getattr(st, k) for k in (
            "st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime", "st_mtime",
            "st_ctime", "st_blocks", "st_ino")}

    def access(self, path, amode):
        if not os.access(self._real(path), amode):
            raise fuse.FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        os.chmod(self._real(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._real(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._real(path), times)

    def readdir(self, path, fi):
        return [".", ".."] + os.listdir(self._real(path))

    def mkdir(self, path, mode):
        os.mkdir(self._real(path), mode)

    def rmdir(self, path):
        os.rmdir(self._real(path))

    def unlink(self, path):
        with self.mutex:
            self._forget_if_gone(self._real(path))
            os.unlink(self._real(path))

    def rename(self, old, new):
        with self.mutex:
            self._forget_if_gone(self._real(new))
            os.rename(self._real(old), self._real(new))

    def link(self, target, source):
        os.link(self._real(source), self._real(target))

    def symlink(self, target, source):
        os.symlink(source, self._real(target))

    def readlink(self, path):
        return os.readlink(self._real(path))

    def fsyncdir(self, path, datasync, fi):
        fd = os.open(self._real(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return 0

    def statfs(self, path):
        st = os.statvfs(self._real(path))
        return {k: getattr(st, k) for k in (
            "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files",
            "f_flag", "f_frsize", "f_namemax")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backing")
    parser.add_argument("mountpoint")
    parser.add_argument("--fsync-lies", metavar="GLOB",
                        help="fsync keeps nothing for the files whose path matches")
    args = parser.parse_args()
    _with_fallocate()
    fs = UnsyncFS(args.backing, fsync_lies=args.fsync_lies)
    # Returns once SIGTERM (or an unmount) ends the session; libfuse has
    # unmounted by then, so nothing writes while the files are put back.
    fuse.FUSE(fs, args.mountpoint, foreground=True, raw_fi=True, big_writes=True,
              max_write=131072, fsname="unsyncfs")
    lost, unpunched = fs.power_cut()
    print(json.dumps({"files_restored": len(lost), "bytes_lost": sum(lost.values()),
                      "punched_bytes_restored": unpunched, "fsyncs": fs.fsyncs,
                      "lost": {path: n for path, n in sorted(lost.items()) if n}}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
