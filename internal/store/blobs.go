package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fileBlobs is a content-addressed file store: each blob is a file named by the
// SHA-256 of its content. Writing is idempotent (the same content lands on
// the same name), so a crash between writing a blob and committing the row
// that names it leaves at most an orphan file, never a missing one.
//
// Durability is batched: Put writes without waiting for the disk, and Sync
// (which callers run before committing rows that name new blobs) flushes
// everything written so far in one call. Ingesting a batch of 64 messages
// therefore costs one flush, not one per file.
type fileBlobs struct {
	dir   string
	dirs  sync.Map    // fan-out folders known to exist
	dirty atomic.Bool // something was written since the last Sync
	mu    sync.Mutex
	// unsynced lists files to fsync on systems without syncfs.
	unsynced []string
}

// openFileBlobs opens (creating) a blob folder and removes temporary files
// left by a crash more than an hour ago.
func openFileBlobs(dir string) (*fileBlobs, error) {
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create blob folder: %w", err)
	}
	if entries, err := os.ReadDir(tmp); err == nil {
		for _, e := range entries {
			if info, err := e.Info(); err == nil && strings.HasPrefix(e.Name(), "put-") && time.Since(info.ModTime()) > time.Hour {
				os.Remove(filepath.Join(tmp, e.Name()))
			}
		}
	}
	return &fileBlobs{dir: dir}, nil
}

// Put streams r into the store and returns its hex SHA-256 and size. The
// blob is durable after the next Sync.
func (b *fileBlobs) Put(r io.Reader) (sum string, size int64, err error) {
	f, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("create blob: %w", err)
	}
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		return "", 0, fmt.Errorf("write blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("close blob: %w", err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	dst := b.path(sum)
	if dir := filepath.Dir(dst); !b.known(dir) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", 0, fmt.Errorf("create blob folder: %w", err)
		}
		b.dirs.Store(dir, true)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	f = nil
	b.written(dst)
	return sum, size, nil
}

func (b *fileBlobs) known(dir string) bool {
	_, ok := b.dirs.Load(dir)
	return ok
}

// Sync makes every blob written so far durable (file contents and the
// folder entries naming them). Call it before committing rows that name
// new blobs.
func (b *fileBlobs) Sync() error {
	if !b.dirty.Swap(false) {
		return nil
	}
	if err := b.syncAll(); err != nil {
		b.dirty.Store(true)
		return fmt.Errorf("flush blobs to disk: %w", err)
	}
	return nil
}

// Path is the file that holds a blob.
func (b *fileBlobs) path(sum string) string {
	return filepath.Join(b.dir, sum[:2], sum[2:4], sum)
}

func validSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
