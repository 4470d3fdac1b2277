//go:build unix

package natsembed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockStore takes dir's lock file, an advisory lock the kernel drops with
// the process, however it ends. On a file system without locks (some NFS,
// SMB or FUSE mounts) the server starts unlocked, as it did before locks.
func lockStore(dir string) (*os.File, error) {
	path := filepath.Join(dir, "hybridscore.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("natsembed: store lock: %w", err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		f.Close()
		return nil, fmt.Errorf("natsembed: %s: %w", dir, ErrStoreInUse)
	case errors.Is(err, syscall.ENOLCK), errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
		f.Close()
		return nil, nil
	}
	f.Close()
	return nil, fmt.Errorf("natsembed: store lock %s: %w", path, err)
}
