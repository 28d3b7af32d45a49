//go:build !linux

package store

import (
	"errors"
	"path/filepath"
)

func (b *fileBlobs) written(path string) {
	b.mu.Lock()
	b.unsynced = append(b.unsynced, path)
	b.mu.Unlock()
	b.dirty.Store(true)
}

// syncAll fsyncs every file written since the last Sync and its folder.
func (b *fileBlobs) syncAll() error {
	b.mu.Lock()
	paths := b.unsynced
	b.unsynced = nil
	b.mu.Unlock()
	var errs []error
	dirs := map[string]bool{}
	for _, p := range paths {
		errs = append(errs, fsync(p))
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		errs = append(errs, fsync(d))
	}
	return errors.Join(errs...)
}
